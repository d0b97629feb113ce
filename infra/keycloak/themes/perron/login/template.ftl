<#--
  Perron's page layout for every Keycloak page a citizen or a staff member sees.

  The commune comes from the OIDC client's attributes, set by the platform when it provisions
  the client: perron_name, perron_logo, perron_home and the palette perron_primary,
  perron_primary_text, perron_accent, perron_background, perron_text (checked for WCAG AA
  contrast by the platform). Without a client, or with an incomplete or malformed palette,
  the page falls back to Perron's neutral look.

  Unlike keycloak.v2's layout, everything works without JavaScript: the language choice is a
  list of links, "restart login" is a link and "try another way" a submit button. Scripts
  are progressive enhancements only.
-->
<#import "field.ftl" as field>
<#import "footer.ftl" as loginFooter>
<#import "theme-resources.ftl" as themeResourceTags>

<#-- Perron's neutral palette: platform/perron/tenancy/models.py DEFAULT_PALETTE. -->
<#assign perronDefaultPalette = {
  "primary": "#1f4e79", "primaryText": "#ffffff", "accent": "#0b5394",
  "background": "#ffffff", "text": "#1a1a1a"
}>

<#-- Each language named in itself, in the platform's order (fr, nl, de, en), as on the sites. -->
<#assign perronLanguageNames = {"fr": "Français", "nl": "Nederlands", "de": "Deutsch", "en": "English"}>

<#function perronLanguages supported>
  <#local ordered = []>
  <#list perronLanguageNames?keys as tag>
    <#list supported as l>
      <#if l.languageTag == tag><#local ordered = ordered + [l]></#if>
    </#list>
  </#list>
  <#list supported?sort_by("label") as l>
    <#if !perronLanguageNames[l.languageTag]??><#local ordered = ordered + [l]></#if>
  </#list>
  <#return ordered>
</#function>

<#function perronAttribute key>
  <#if client?? && client.attributes?? && client.attributes[key]?? && client.attributes[key]?is_string>
    <#return client.attributes[key]?trim>
  </#if>
  <#return "">
</#function>

<#function perronWebUrl key>
  <#local value = perronAttribute(key)>
  <#if value?matches("https?://[^\\s\"'<>`\\\\]+", "i")>
    <#return value>
  </#if>
  <#return "">
</#function>

<#-- The commune's palette when all five colours are #rrggbb, else the neutral one: colours are
     only checked for contrast as a whole, so they are never mixed with the defaults. -->
<#function perronPalette>
  <#local palette = {
    "primary": perronAttribute("perron_primary"), "primaryText": perronAttribute("perron_primary_text"),
    "accent": perronAttribute("perron_accent"), "background": perronAttribute("perron_background"),
    "text": perronAttribute("perron_text")
  }>
  <#list palette?values as colour>
    <#if !colour?matches("#[0-9a-fA-F]{6}")>
      <#return perronDefaultPalette>
    </#if>
  </#list>
  <#return palette>
</#function>

<#macro username>
  <#assign label>
    <#if !realm.loginWithEmailAllowed>${msg("username")}<#elseif !realm.registrationEmailAsUsername>${msg("usernameOrEmail")}<#else>${msg("email")}</#if>
  </#assign>
  <@field.group name="kc-attempted-username" label=label>
    <div class="${properties.kcInputGroup}">
      <div class="${properties.kcInputGroupItemClass} ${properties.kcFill}">
        <span class="${properties.kcInputClass} ${properties.kcFormReadOnlyClass}">
          <input id="kc-attempted-username" value="${auth.attemptedUsername}" readonly>
        </span>
      </div>
      <div class="${properties.kcInputGroupItemClass}">
        <a id="reset-login" class="perron-restart-login" href="${url.loginRestartFlowUrl}">${msg("restartLoginTooltip")}</a>
      </div>
    </div>
  </@field.group>
</#macro>

<#macro registrationLayout bodyClass="" displayInfo=false displayMessage=true displayRequiredFields=false>
<#assign perronName = perronAttribute("perron_name")?has_content?then(perronAttribute("perron_name"), "Perron")>
<#assign perronLogo = perronWebUrl("perron_logo")>
<#assign perronHome = perronWebUrl("perron_home")>
<#assign perronColours = perronPalette()>
<#assign perronHeader><#nested "header"></#assign>
<#assign perronTitle = perronHeader?markup_string?replace("<[^>]*>", " ", "r")?replace("\\s+", " ", "r")?trim>
<!DOCTYPE html>
<html class="${properties.kcHtmlClass!} perron-nojs" lang="${lang}"<#if realm.internationalizationEnabled> dir="${(locale.rtl)?then('rtl','ltr')}"</#if>>
<head>
    <meta charset="utf-8">
    <meta name="color-scheme" content="light">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="robots" content="noindex, nofollow">
    <meta name="theme-color" content="${perronColours.primary}">
    <#-- perronTitle is already escaped markup with its tags removed. -->
    <title><#if perronTitle?has_content>${perronTitle?no_esc} – </#if>${perronName}</title>
    <#if perronHome?has_content>
        <link rel="icon" href="${perronHome?remove_ending('/')}/favicon.ico">
    <#elseif themeResources?? && themeResources.favicons?has_content>
        <@themeResourceTags.renderFavicons themeResources.favicons url.resourcesPath />
    <#else>
        <link rel="icon" href="${url.resourcesPath}/img/favicon.ico" />
    </#if>
    <#if themeResources?? && themeResources.stylesCommon?has_content>
        <@themeResourceTags.renderStyles themeResources.stylesCommon url.resourcesCommonPath />
    <#elseif properties.stylesCommon?has_content>
        <#list properties.stylesCommon?split(' ') as style>
            <link href="${url.resourcesCommonPath}/${style}" rel="stylesheet" />
        </#list>
    </#if>
    <#if themeResources?? && themeResources.styles?has_content>
        <@themeResourceTags.renderStyles themeResources.styles url.resourcesPath />
    <#elseif properties.styles?has_content>
        <#list properties.styles?split(' ') as style>
            <link href="${url.resourcesPath}/${style}" rel="stylesheet" />
        </#list>
    </#if>
    <style>
        :root {
            --perron-primary: ${perronColours.primary};
            --perron-on-primary: ${perronColours.primaryText};
            --perron-accent: ${perronColours.accent};
            --perron-background: ${perronColours.background};
            --perron-text: ${perronColours.text};
        }
    </style>
    <script>document.documentElement.classList.remove("perron-nojs");</script>
    <script type="importmap">
        {
            "imports": {
                "rfc4648": "${url.resourcesCommonPath}/vendor/rfc4648/rfc4648.js"
            }
        }
    </script>
    <#if themeResources?? && themeResources.scripts?has_content>
        <@themeResourceTags.renderScripts themeResources.scripts url.resourcesPath "text/javascript" />
    <#elseif properties.scripts?has_content>
        <#list properties.scripts?split(' ') as script>
            <script src="${url.resourcesPath}/${script}" type="text/javascript"></script>
        </#list>
    </#if>
    <#if scripts??>
        <#list scripts as script>
            <script src="${script}" type="text/javascript"></script>
        </#list>
    </#if>
    <script type="module" src="${url.resourcesPath}/js/passwordVisibility.js"></script>
    <script type="module">
        <#outputformat "JavaScript">
        import { startSessionPolling } from ${(url.resourcesPath + "/js/authChecker.js")?c};

        startSessionPolling(
            ${url.ssoLoginInOtherTabsUrl?c}
        );
        </#outputformat>
    </script>
    <#if authenticationSession??>
        <script type="module">
            <#outputformat "JavaScript">
            import { checkAuthSession } from ${(url.resourcesPath + "/js/authChecker.js")?c};

            checkAuthSession(
                ${authenticationSession.authSessionIdHash?c}
            );
            </#outputformat>
        </script>
    </#if>
</head>

<body id="keycloak-bg" class="${properties.kcBodyClass!} perron ${bodyClass}" data-page-id="login-${pageId}">
<a class="perron-skip-link" href="#perron-main">${msg("perronSkipToContent")}</a>
<header class="perron-header">
  <div class="perron-header__inner">
    <#if perronHome?has_content><a class="perron-brand" href="${perronHome}"><#else><span class="perron-brand"></#if>
      <#if perronLogo?has_content><img class="perron-brand__logo" src="${perronLogo}" alt=""></#if>
      <span class="perron-brand__name">${perronName}</span>
    <#if perronHome?has_content></a><#else></span></#if>
    <#if realm.internationalizationEnabled && locale.supported?size gt 1>
      <nav class="perron-languages" aria-label="${msg("perronLanguage")}">
        <ul>
          <#list perronLanguages(locale.supported) as l>
            <li><a href="${l.url}" hreflang="${l.languageTag}" lang="${l.languageTag}"<#if l.languageTag == locale.currentLanguageTag> aria-current="true"</#if>>${perronLanguageNames[l.languageTag]!l.label}</a></li>
          </#list>
        </ul>
      </nav>
    </#if>
  </div>
</header>
<div class="${properties.kcLogin!}">
  <div class="${properties.kcLoginContainer!}">
    <main id="perron-main" class="${properties.kcLoginMain!}" tabindex="-1">
      <div class="${properties.kcLoginMainHeader!}">
        <h1 class="${properties.kcLoginMainTitle!}" id="kc-page-title">${perronHeader}</h1>
      </div>
      <div class="${properties.kcLoginMainBody!}">
        <#if !(auth?has_content && auth.showUsername() && !auth.showResetCredentials())>
            <#if displayRequiredFields>
                <div class="${properties.kcContentWrapperClass!}">
                    <div class="${properties.kcLabelWrapperClass!} subtitle">
                        <span class="${properties.kcInputHelperTextItemTextClass!}">
                          <span class="${properties.kcInputRequiredClass!}" aria-hidden="true">*</span> ${msg("requiredFields")}
                        </span>
                    </div>
                </div>
            </#if>
        <#else>
            <#if displayRequiredFields>
                <div class="${properties.kcContentWrapperClass!}">
                    <div class="${properties.kcLabelWrapperClass!} subtitle">
                        <span class="${properties.kcInputHelperTextItemTextClass!}">
                          <span class="${properties.kcInputRequiredClass!}" aria-hidden="true">*</span> ${msg("requiredFields")}
                        </span>
                    </div>
                    <div class="${properties.kcFormClass} ${properties.kcContentWrapperClass}">
                        <#nested "show-username">
                        <@username />
                    </div>
                </div>
            <#else>
                <div class="${properties.kcFormClass} ${properties.kcContentWrapperClass}">
                  <#nested "show-username">
                  <@username />
                </div>
            </#if>
        </#if>

        <#-- App-initiated actions should not see warning messages about the need to complete the action during login. -->
        <#if displayMessage && message?has_content && (message.type != 'warning' || !isAppInitiatedAction??)>
            <div class="${properties.kcAlertClass!} pf-m-${(message.type = 'error')?then('danger', message.type)}">
                <div class="${properties.kcAlertIconClass!}">
                    <#if message.type = 'success'><span class="${properties.kcFeedbackSuccessIcon!}" aria-hidden="true"></span></#if>
                    <#if message.type = 'warning'><span class="${properties.kcFeedbackWarningIcon!}" aria-hidden="true"></span></#if>
                    <#if message.type = 'error'><span class="${properties.kcFeedbackErrorIcon!}" aria-hidden="true"></span></#if>
                    <#if message.type = 'info'><span class="${properties.kcFeedbackInfoIcon!}" aria-hidden="true"></span></#if>
                </div>
                <span class="${properties.kcAlertTitleClass!} kc-feedback-text">${message.summary}</span>
            </div>
        </#if>

        <#nested "form">

        <#if auth?has_content && auth.showTryAnotherWayLink()>
          <form id="kc-select-try-another-way-form" action="${url.loginAction}" method="post" novalidate="novalidate">
              <input type="hidden" name="tryAnotherWay" value="on"/>
              <button type="submit" id="try-another-way"
                  class="${properties.kcButtonSecondaryClass} ${properties.kcButtonBlockClass} ${properties.kcMarginTopClass}">
                    ${msg("doTryAnotherWay")}
              </button>
          </form>
        </#if>

        <#if switchOrganizationEnabled?? && switchOrganizationEnabled>
          <form id="kc-switch-organization-form" action="${url.loginAction}" method="post" novalidate="novalidate">
              <input type="hidden" name="switchOrganization" value="true"/>
              <button type="submit" id="switch-organization"
                  class="${properties.kcButtonSecondaryClass} ${properties.kcButtonBlockClass} ${properties.kcMarginTopClass}">
                    ${msg("doSwitchOrganization")}
              </button>
          </form>
        </#if>

          <div class="${properties.kcLoginMainFooter!}">
              <#nested "socialProviders">

              <#if displayInfo>
                  <div id="kc-info" class="${properties.kcLoginMainFooterBand!} ${properties.kcFormClass}">
                      <div id="kc-info-wrapper" class="${properties.kcLoginMainFooterBandItem!}">
                          <#nested "info">
                      </div>
                  </div>
              </#if>
          </div>
      </div>

        <div class="${properties.kcLoginMainFooter!}">
            <@loginFooter.content/>
        </div>
    </main>
  </div>
</div>
<#if perronHome?has_content>
<footer class="perron-footer">
  <a href="${perronHome}">${msg("perronBackToSite")}</a>
</footer>
</#if>
</body>
</html>
</#macro>
