<#-- keycloak.v2's one-time-code page, with the choice between several authenticator apps made
     by radio buttons (keycloak.v2 needs JavaScript for it). -->
<#import "template.ftl" as layout>
<#import "field.ftl" as field>
<#import "buttons.ftl" as buttons>
<@layout.registrationLayout displayMessage=!messagesPerField.existsError('totp'); section>
    <#if section="header">
        ${msg("doLogIn")}
    <#elseif section="form">
        <form id="kc-otp-login-form" class="${properties.kcFormClass!}" action="${url.loginAction}" method="post">
            <#if otpLogin.userOtpCredentials?size gt 1>
                <fieldset class="perron-otp-devices">
                    <legend>${msg("perronOtpDevice")}</legend>
                    <#list otpLogin.userOtpCredentials as otpCredential>
                        <label for="kc-otp-credential-${otpCredential?index}">
                            <input type="radio" id="kc-otp-credential-${otpCredential?index}" name="selectedCredentialId"
                                   value="${otpCredential.id}"<#if otpCredential.id == (otpLogin.selectedCredentialId!'')> checked</#if>>
                            ${otpCredential.userLabel}
                        </label>
                    </#list>
                </fieldset>
            <#else>
                <input id="selectedCredentialId" type="hidden" name="selectedCredentialId" value="${otpLogin.selectedCredentialId!''}">
            </#if>

            <@field.input name="otp" label=msg("loginOtpOneTime") autocomplete="one-time-code" fieldName="totp" autofocus=true />

            <@buttons.loginButton />
        </form>
    </#if>
</@layout.registrationLayout>
