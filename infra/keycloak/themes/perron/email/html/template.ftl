<#--
  The layout of every HTML e-mail Keycloak sends (each base template calls emailLayout).

  E-mail templates are given no OIDC client: only the realm's display name, the user and,
  for action e-mails, the link. When the action started from a commune's login page, the
  link carries `client_id=commune-<slug>`; if the realm has a localization text
  `perronClientName.<client id>` (set by the platform), the commune's name heads the e-mail.
  Otherwise the realm's display name does.

  Inline styles, as e-mail programs drop most stylesheets; colours are Perron's neutral
  palette (platform/perron/tenancy/models.py DEFAULT_PALETTE), whose pairs pass WCAG AA.
-->
<#function perronSender>
  <#if link?? && link?is_string && link?contains("client_id=")>
    <#local clientId = link?keep_after("client_id=")?keep_before("&")>
    <#if clientId?matches("[A-Za-z0-9._-]{1,255}")>
      <#local key = "perronClientName." + clientId>
      <#local name = msg(key)>
      <#if name?has_content && name != key>
        <#return name>
      </#if>
    </#if>
  </#if>
  <#return realmName>
</#function>

<#macro emailLayout>
<!DOCTYPE html>
<html lang="${locale.language}" dir="${(ltr)?then('ltr','rtl')}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>${subject!realmName}</title>
<style>
  a { color: #0b5394; }
</style>
</head>
<body style="margin:0; padding:0; background:#ffffff; color:#1a1a1a; font-family:system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', sans-serif; font-size:16px; line-height:1.6;">
<div role="article" aria-label="${subject!realmName}" lang="${locale.language}">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="border-collapse:collapse; max-width:40rem; margin:0 auto;">
  <tr>
    <td style="background:#1f4e79; color:#ffffff; padding:16px 24px; font-size:20px; font-weight:700;">${perronSender()}</td>
  </tr>
  <tr>
    <td style="padding:24px; color:#1a1a1a;">
      <#nested>
    </td>
  </tr>
  <tr>
    <td style="padding:16px 24px; border-top:1px solid #1a1a1a; font-size:14px; color:#1a1a1a;">${msg("perronEmailFooter", realmName)}</td>
  </tr>
</table>
</div>
</body>
</html>
</#macro>
