<#-- keycloak.v2's choice of a login method, with one submit button per method (keycloak.v2
     makes a div clickable with JavaScript). -->
<#import "template.ftl" as layout>
<@layout.registrationLayout displayInfo=false; section>
    <#if section = "header">
        ${msg("loginChooseAuthenticator")}
    <#elseif section = "form">
        <ul class="perron-authenticators">
            <#list auth.authenticationSelections as authenticationSelection>
                <li>
                    <form id="kc-select-credential-form-${authenticationSelection?index}" action="${url.loginAction}" method="post">
                        <input type="hidden" name="authenticationExecution" value="${authenticationSelection.authExecId}">
                        <button type="submit" class="${properties.kcButtonSecondaryClass!}">
                            <span class="perron-authenticators__name">${msg('${authenticationSelection.displayName}')}</span>
                            <span class="perron-authenticators__help">${msg('${authenticationSelection.helpText}')}</span>
                        </button>
                    </form>
                </li>
            </#list>
        </ul>
    </#if>
</@layout.registrationLayout>
