"""Keycloak, driven through its admin API (python-keycloak, async calls).

* :func:`provision_realms` brings the realms ``citizens``, ``staff`` and (outside production)
  ``itsme-sandbox`` to the state described by the JSON templates in ``infra/keycloak/realms``.
  It is idempotent: what exists is updated, what is missing is created, mappers and flow
  steps that are no longer described are removed.
* :func:`sync_commune_clients` and :func:`ensure_console_client` keep one OIDC client per
  commune (and one for the console) in step with the commune's domains and branding.
* :func:`create_staff_user`, :func:`delete_user`, :func:`logout_user`, :func:`find_user`: the
  account operations the platform needs.

Keycloak being unreachable raises :class:`KeycloakUnavailable` (try again later); Keycloak
refusing a change raises :class:`KeycloakRefused`. Client secrets are derived from the
platform secret (:func:`client_secret`), so nothing is stored.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from keycloak import KeycloakAdmin
from keycloak.exceptions import KeycloakConnectionError, KeycloakError
from sqlalchemy.ext.asyncio import AsyncSession

from perron.config import ConfigurationError, Settings
from perron.errors import Conflict, Invalid, NotFound, PerronError
from perron.identity.oidc import (
    CITIZENS,
    CLIENT_PREFIX,
    ITSME,
    STAFF,
    client_id_for,
    client_secret,
)
from perron.logging import get_logger

if TYPE_CHECKING:
    from perron.tenancy.site import TenantSite

log = get_logger("perron.identity.keycloak")

SANDBOX = "itsme-sandbox"
ACCOUNT_REALMS = (CITIZENS, STAFF)

BROKER_CLIENT = "perron-broker"
CONSOLE_CLIENT = "perron-console"
CALLBACK_PATH = "/login/callback"
BACKCHANNEL_PATH = "/_oidc/backchannel-logout"
LANGUAGES = ("fr", "nl", "de", "en")
STAFF_ACTIONS = ["UPDATE_PASSWORD", "CONFIGURE_TOTP"]
STAFF_LINK_LIFESPAN_SECONDS = 72 * 3600

DEFAULT_SOURCE = Path(__file__).resolve().parents[3] / "infra" / "keycloak"
"""``infra/keycloak`` of the checkout Perron runs from: realm templates and sandbox people."""

_SANDBOX_IDS = uuid.UUID("1b0f7f0e-5d1c-4c38-9a51-7d8f3c2e6a10")
_PALETTE_ATTRIBUTES = {
    "primary_color": "perron_primary",
    "primary_text_color": "perron_primary_text",
    "accent_color": "perron_accent",
    "background_color": "perron_background",
    "text_color": "perron_text",
}


class KeycloakUnavailable(PerronError):
    """Keycloak cannot be reached (refused, timed out, server error): try again later."""

    status_code = 503
    temporary = True


class KeycloakRefused(PerronError):
    """Keycloak answered, but refused what was asked."""

    status_code = 502


# Connection ---------------------------------------------------------------------------


def admin(settings: Settings, realm: str = "master") -> KeycloakAdmin:
    """An admin client acting on ``realm``, logged in as the ``master`` realm's admin."""
    try:
        password = settings.keycloak_admin_secret()
    except ConfigurationError as error:
        raise KeycloakUnavailable(str(error)) from error
    return KeycloakAdmin(
        server_url=settings.keycloak_url + "/",
        username=settings.keycloak_admin_username,
        password=password,
        realm_name=realm,
        user_realm_name="master",
        client_id="admin-cli",
        timeout=max(1, round(settings.keycloak_timeout_seconds)),
    )


@asynccontextmanager
async def connected(settings: Settings, realm: str = "master") -> AsyncIterator[KeycloakAdmin]:
    """An admin client for the duration of the block; Keycloak's failures become
    :class:`KeycloakUnavailable` or :class:`KeycloakRefused`."""
    client = admin(settings, realm)
    try:
        await _log_in(client)
        yield client
    except KeycloakConnectionError as error:
        raise KeycloakUnavailable(f"Keycloak cannot be reached at {settings.keycloak_url}") from error
    except KeycloakError as error:
        if (error.response_code or 0) >= 500:
            raise KeycloakUnavailable(f"Keycloak failed ({error.response_code}): {_text(error)}") from error
        raise KeycloakRefused(f"Keycloak refused ({error.response_code}): {_text(error)}") from error
    finally:
        await client.connection.aclose()


async def _log_in(client: KeycloakAdmin) -> None:
    try:
        await client.connection.a_get_token()
    except KeycloakConnectionError:
        raise
    except KeycloakError as error:
        if (error.response_code or 0) >= 500:
            raise
        raise KeycloakRefused(
            "Keycloak refused the admin login: check PERRON_KEYCLOAK_ADMIN_USERNAME and "
            "PERRON_KEYCLOAK_ADMIN_PASSWORD"
        ) from error


def _text(error: KeycloakError) -> str:
    message = error.error_message
    if isinstance(message, bytes):
        message = message.decode(errors="replace")
    return str(message)[:300]


def _missing(error: KeycloakError) -> bool:
    return error.response_code == 404


# Templates ----------------------------------------------------------------------------


def load_template(settings: Settings, realm: str, source: Path | None = None) -> dict[str, Any]:
    """A realm's desired state: its template with ``{{keycloak_url}}`` filled in and the
    ``_comment`` keys dropped."""
    path = (source or DEFAULT_SOURCE) / "realms" / f"{realm}.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PerronError(f"the realm template {path} is missing") from None
    except ValueError as error:
        raise PerronError(f"the realm template {path} is not valid JSON ({error})") from None
    filled: dict[str, Any] = _fill(raw, {"keycloak_url": settings.keycloak_url})
    return filled


def _fill(value: Any, variables: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        for name, replacement in variables.items():
            value = value.replace("{{" + name + "}}", replacement)
        return value
    if isinstance(value, list):
        return [_fill(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, variables) for key, item in value.items() if key != "_comment"}
    return value


def sandbox_citizens(source: Path | None = None) -> list[dict[str, Any]]:
    """The fictitious people of ``sandbox-citizens.json``."""
    path = (source or DEFAULT_SOURCE) / "sandbox-citizens.json"
    try:
        people: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["citizens"]
    except (FileNotFoundError, KeyError, ValueError) as error:
        raise PerronError(f"cannot read the sandbox citizens from {path} ({error})") from None
    return people


# Realms -------------------------------------------------------------------------------


async def provision_realms(settings: Settings, *, source: Path | None = None) -> list[str]:
    """Create or update every realm Perron needs; returns their names. Without the sandbox
    (production), an ``itsme-sandbox`` realm left from before is deleted, with the
    ``itsme`` identity provider that pointed at it."""
    realms = [CITIZENS, STAFF, SANDBOX] if settings.uses_itsme_sandbox else [CITIZENS, STAFF]
    for realm in realms:
        await _provision_realm(settings, load_template(settings, realm, source))
    if settings.uses_itsme_sandbox:
        await _import_sandbox_citizens(settings, sandbox_citizens(source))
    else:
        await _remove_sandbox(settings)
    return realms


async def _provision_realm(settings: Settings, template: Mapping[str, Any]) -> None:
    name = template["realm"]["realm"]
    async with connected(settings, name) as kc:
        await _ensure_realm(kc, name)
        for key in template.get("keys", []):
            await _ensure_key(kc, name, key)
        if "userProfile" in template:
            await _ensure_user_profile(kc, template["userProfile"])
        for scope in template.get("clientScopes", []):
            await _ensure_client_scope(kc, scope)
        for flow in template.get("flows", []):
            await _ensure_flow(kc, name, flow)
        await kc.a_update_realm(name, _realm_settings(settings, template["realm"]))
        for provider in template.get("identityProviders", []):
            if _applies(provider, settings):
                await _ensure_identity_provider(kc, provider)
        for client in template.get("clients", []):
            await _ensure_client(kc, client)
    log.info("keycloak.realm_provisioned", realm=name)


def _applies(item: Mapping[str, Any], settings: Settings) -> bool:
    return item.get("_when") != "itsme_sandbox" or settings.uses_itsme_sandbox


def _realm_settings(settings: Settings, wanted: Mapping[str, Any]) -> dict[str, Any]:
    payload = dict(wanted)
    payload["smtpServer"] = _smtp_server(settings)
    return payload


def _smtp_server(settings: Settings) -> dict[str, str]:
    """Keycloak's SMTP settings, from Perron's; empty (no e-mail) without an SMTP host."""
    if not settings.smtp_host:
        return {}
    server = {
        "host": settings.smtp_host,
        "port": str(settings.smtp_port),
        "from": settings.mail_from_address,
        "fromDisplayName": "Perron",
        "ssl": str(settings.smtp_ssl).lower(),
        "starttls": str(settings.smtp_starttls).lower(),
        "auth": "false",
    }
    if settings.smtp_username:
        server["auth"] = "true"
        server["user"] = settings.smtp_username
        server["password"] = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
    return server


async def _ensure_realm(kc: KeycloakAdmin, name: str) -> None:
    try:
        await kc.a_get_realm(name)
    except KeycloakError as error:
        if not _missing(error):
            raise
        await kc.a_create_realm({"realm": name, "enabled": True})
        log.info("keycloak.realm_created", realm=name)


async def _realm_id(kc: KeycloakAdmin, name: str) -> str:
    realm: dict[str, Any] = await kc.a_get_realm(name)
    return str(realm["id"])


async def _ensure_key(kc: KeycloakAdmin, realm: str, key: Mapping[str, Any]) -> None:
    """A key provider, created once (an existing key is kept: re-creating it would make
    tokens encrypted to the old key unreadable)."""
    parent = await _realm_id(kc, realm)
    existing = await kc.a_get_components({"parent": parent, "type": "org.keycloak.keys.KeyProvider"})
    if any(component.get("name") == key["name"] for component in existing):
        return
    await kc.a_create_component({**key, "providerType": "org.keycloak.keys.KeyProvider", "parentId": parent})


async def _ensure_user_profile(kc: KeycloakAdmin, wanted: Mapping[str, Any]) -> None:
    profile: dict[str, Any] = await kc.a_get_realm_users_profile()
    if all(profile.get(key) == value for key, value in wanted.items()):
        return
    await kc.a_update_realm_users_profile({**profile, **wanted})


# Client scopes and their mappers ------------------------------------------------------


async def _scope_ids(kc: KeycloakAdmin) -> dict[str, str]:
    return {scope["name"]: scope["id"] for scope in await kc.a_get_client_scopes()}


async def _ensure_client_scope(kc: KeycloakAdmin, wanted: Mapping[str, Any]) -> None:
    mappers = wanted.get("protocolMappers", [])
    body = {key: value for key, value in wanted.items() if key != "protocolMappers"}
    scope_id = (await _scope_ids(kc)).get(wanted["name"])
    if scope_id is None:
        scope_id = await kc.a_create_client_scope(body)
    else:
        await kc.a_update_client_scope(scope_id, {**body, "id": scope_id})
    existing = {mapper["name"]: mapper for mapper in await kc.a_get_mappers_from_client_scope(scope_id)}
    for mapper in mappers:
        current = existing.pop(mapper["name"], None)
        if current is None:
            await kc.a_add_mapper_to_client_scope(scope_id, mapper)
        elif not _same_mapper(current, mapper, "protocolMapper"):
            await kc.a_update_mapper_in_client_scope(scope_id, current["id"], {**mapper, "id": current["id"]})
    for stale in existing.values():
        await kc.a_delete_mapper_from_client_scope(scope_id, stale["id"])


def _same_mapper(current: Mapping[str, Any], wanted: Mapping[str, Any], kind: str) -> bool:
    return current.get(kind) == wanted.get(kind) and current.get("config", {}) == wanted.get("config", {})


# Authentication flows -----------------------------------------------------------------


def _flatten(steps: Sequence[Mapping[str, Any]], level: int = 0) -> list[tuple[Any, ...]]:
    """A flow tree as comparable rows: (level, step, requirement, config)."""
    rows: list[tuple[Any, ...]] = []
    for step in steps:
        config = step.get("config", {}).get("config")
        name = step.get("flow") or step["authenticator"]
        rows.append((level, name, step["requirement"], json.dumps(config, sort_keys=True)))
        if "flow" in step:
            rows.extend(_flatten(step.get("executions", []), level + 1))
    return rows


async def _flow_rows(kc: KeycloakAdmin, alias: str) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for execution in await kc.a_get_authentication_flow_executions(alias):
        config = None
        if execution.get("authenticationConfig"):
            config = (await kc.a_get_authenticator_config(execution["authenticationConfig"])).get("config")
        name = execution["displayName"] if execution.get("authenticationFlow") else execution["providerId"]
        rows.append((execution["level"], name, execution["requirement"], json.dumps(config, sort_keys=True)))
    return rows


async def _ensure_flow(kc: KeycloakAdmin, realm: str, wanted: Mapping[str, Any]) -> None:
    """A top-level flow exactly as described. A flow that differs (changed by hand) is
    rebuilt: for the fraction of a second this takes, the realm uses Keycloak's own browser
    flow (password, then a one-time code for whoever has one); the realm settings applied
    next bind the rebuilt flow again."""
    alias = wanted["alias"]
    flows = {flow["alias"]: flow for flow in await kc.a_get_authentication_flows()}
    if alias in flows:
        if await _flow_rows(kc, alias) == _flatten(wanted["executions"]):
            return
        if (await kc.a_get_realm(realm)).get("browserFlow") == alias:
            await kc.a_update_realm(realm, {"browserFlow": "browser"})
        await kc.a_delete_authentication_flow(flows[alias]["id"])
        log.info("keycloak.flow_rebuilt", realm=realm, flow=alias)
    await kc.a_create_authentication_flow(
        {
            "alias": alias,
            "description": wanted.get("description", ""),
            "providerId": "basic-flow",
            "topLevel": True,
            "builtIn": False,
        }
    )
    await _add_steps(kc, alias, wanted["executions"])


async def _add_steps(kc: KeycloakAdmin, parent: str, steps: Sequence[Mapping[str, Any]]) -> None:
    for step in steps:
        if "flow" in step:
            await kc.a_create_authentication_flow_subflow(
                {
                    "alias": step["flow"],
                    "description": step.get("description", ""),
                    "provider": "registration-page-form",
                    "type": "basic-flow",
                },
                parent,
            )
        else:
            await kc.a_create_authentication_flow_execution({"provider": step["authenticator"]}, parent)
        added = [e for e in await kc.a_get_authentication_flow_executions(parent) if e["level"] == 0][-1]
        await kc.a_update_authentication_flow_executions(
            {"id": added["id"], "requirement": step["requirement"]}, parent
        )
        if "config" in step:
            await kc.a_create_execution_config(added["id"], step["config"])
        if "flow" in step:
            await _add_steps(kc, step["flow"], step.get("executions", []))


# Identity providers -------------------------------------------------------------------


async def _ensure_identity_provider(kc: KeycloakAdmin, wanted: Mapping[str, Any]) -> None:
    mappers = wanted.get("mappers", [])
    body = {key: value for key, value in wanted.items() if key not in {"mappers", "_when"}}
    alias = body["alias"]
    try:
        await kc.a_get_idp(alias)
    except KeycloakError as error:
        if not _missing(error):
            raise
        await kc.a_create_idp(body)
    else:
        await kc.a_update_idp(alias, body)
    existing = {mapper["name"]: mapper for mapper in await kc.a_get_idp_mappers(alias)}
    for mapper in mappers:
        current = existing.pop(mapper["name"], None)
        payload = {**mapper, "identityProviderAlias": alias}
        if current is None:
            await kc.a_add_mapper_to_idp(alias, payload)
        elif not _same_mapper(current, mapper, "identityProviderMapper"):
            await kc.a_update_mapper_in_idp(alias, current["id"], {**payload, "id": current["id"]})
    for stale in existing.values():
        await kc.connection.a_raw_delete(
            f"admin/realms/{kc.connection.realm_name}/identity-provider/instances/{alias}/mappers/{stale['id']}"
        )


# Clients ------------------------------------------------------------------------------


async def _ensure_client(kc: KeycloakAdmin, wanted: Mapping[str, Any]) -> str:
    """Create or update a client (by ``clientId``) and give it exactly its scopes."""
    default = wanted.get("defaultClientScopes", [])
    optional = wanted.get("optionalClientScopes", [])
    body = {
        key: value
        for key, value in wanted.items()
        if key not in {"defaultClientScopes", "optionalClientScopes"}
    }
    internal = await kc.a_get_client_id(wanted["clientId"])
    if internal is None:
        internal = await kc.a_create_client(body)
    else:
        current = (await kc.a_get_client(internal)).get("attributes", {})
        attributes = dict(body.get("attributes", {}))
        for stale in [key for key in current if key.startswith("perron_") and key not in attributes]:
            attributes[stale] = ""  # Keycloak removes an attribute set to ""
        await kc.a_update_client(internal, {**body, "id": internal, "attributes": attributes})
    await _ensure_client_scopes(kc, internal, default, optional)
    return internal


async def _ensure_client_scopes(
    kc: KeycloakAdmin, client: str, default: Sequence[str], optional: Sequence[str]
) -> None:
    ids = await _scope_ids(kc)
    unknown = [name for name in [*default, *optional] if name not in ids]
    if unknown:
        raise KeycloakRefused(f"realm {kc.connection.realm_name} has no client scope {', '.join(unknown)}")
    realm = kc.connection.realm_name
    current_default = {s["name"] for s in await kc.a_get_client_default_client_scopes(client)}
    current_optional = {s["name"] for s in await kc.a_get_client_optional_client_scopes(client)}
    for name in current_default - set(default):
        await kc.a_delete_client_default_client_scope(client, ids[name])
    for name in current_optional - set(optional):
        await kc.a_delete_client_optional_client_scope(client, ids[name])
    payload = {"realm": realm, "client": client}
    for name in set(default) - current_default:
        await kc.a_add_client_default_client_scope(client, ids[name], {**payload, "clientScopeId": ids[name]})
    for name in set(optional) - current_optional:
        await kc.a_add_client_optional_client_scope(
            client, ids[name], {**payload, "clientScopeId": ids[name]}
        )


@dataclass(frozen=True, slots=True)
class CommuneLogin:
    """What Keycloak needs to know about a commune to log its people in."""

    slug: str
    names: Mapping[str, str]
    languages: Sequence[str]
    hosts: Sequence[str]
    """Every domain of the commune, the primary one first."""
    palette: Mapping[str, str] = field(default_factory=dict)
    logo_path: str | None = None
    """Path (with its version query) of the commune's logo, or icon, on its own site."""
    active: bool = True

    @classmethod
    def from_site(cls, site: TenantSite, hosts: Sequence[str]) -> CommuneLogin:
        """From a commune's site snapshot and all its domains (archived: clients disabled)."""
        from perron.tenancy.models import CommuneStatus

        ordered = [site.primary_host, *[host for host in hosts if host != site.primary_host]]
        return cls(
            slug=site.slug,
            names=dict(site.names),
            languages=tuple(site.languages),
            hosts=[host for host in ordered if host],
            palette=dict(site.branding.palette),
            logo_path=site.branding.logo_url or site.branding.icon_192_url,
            active=site.status != CommuneStatus.ARCHIVED,
        )

    @property
    def client_id(self) -> str:
        return client_id_for(self.slug)

    def name(self) -> str:
        first = self.languages[0] if self.languages else "fr"
        return self.names.get(first) or next(iter(self.names.values()), self.slug)


async def commune_login(session: AsyncSession, commune_id: UUID) -> CommuneLogin | None:
    """A commune as Keycloak needs to know it, read in the caller's scope (None: gone)."""
    from perron.tenancy.actions import commune_domains
    from perron.tenancy.site import load_site

    site = await load_site(session, commune_id)
    if site is None:
        return None
    hosts = [domain.host for domain in await commune_domains(session, commune_id)]
    return CommuneLogin.from_site(site, hosts)


def site_base(settings: Settings, host: str, port: int | None) -> str:
    """Where a site answers: ``https://host`` in production, else ``http://host[:port]``."""
    if settings.env == "production":
        return f"https://{host}"
    return f"http://{host}:{port}" if port else f"http://{host}"


def _login_client(
    settings: Settings,
    realm: str,
    client_id: str,
    bases: Sequence[str],
    attributes: Mapping[str, str],
    *,
    name: str,
    enabled: bool,
) -> dict[str, Any]:
    """A confidential client: code flow with PKCE S256, exact redirect URIs, back-channel
    logout with the session id."""
    scopes = ["basic", "acr", "profile", "email"] + (["perron"] if realm == CITIZENS else [])
    return {
        "clientId": client_id,
        "name": name,
        "enabled": enabled,
        "protocol": "openid-connect",
        "publicClient": False,
        "clientAuthenticatorType": "client-secret",
        "secret": client_secret(settings, realm, client_id),
        "standardFlowEnabled": True,
        "implicitFlowEnabled": False,
        "directAccessGrantsEnabled": False,
        "serviceAccountsEnabled": False,
        "frontchannelLogout": False,
        "consentRequired": False,
        "fullScopeAllowed": False,
        "baseUrl": bases[0] + "/",
        "redirectUris": [base + CALLBACK_PATH for base in bases],
        "webOrigins": [],
        "attributes": {
            "pkce.code.challenge.method": "S256",
            "post.logout.redirect.uris": "##".join(base + "/" for base in bases),
            "backchannel.logout.url": settings.backchannel_base() + BACKCHANNEL_PATH,
            "backchannel.logout.session.required": "true",
            "backchannel.logout.revoke.offline.tokens": "false",
            **attributes,
        },
        "defaultClientScopes": scopes,
        "optionalClientScopes": [],
    }


def _branding(commune: CommuneLogin, home: str) -> dict[str, str]:
    """The attributes the ``perron`` login theme reads."""
    attributes = {
        "perron_name": commune.name(),
        "perron_home": home,
        **{f"perron_name_{language}": name for language, name in commune.names.items()},
    }
    if commune.logo_path:
        attributes["perron_logo"] = home.rstrip("/") + commune.logo_path
    for key, attribute in _PALETTE_ATTRIBUTES.items():
        if key in commune.palette:
            attributes[attribute] = commune.palette[key]
    return attributes


async def sync_commune_clients(settings: Settings, commune: CommuneLogin, *, port: int | None = None) -> None:
    """Create or update the commune's client ``commune-<slug>`` in the citizens and staff
    realms; an inactive (archived) commune's clients are disabled."""
    if not commune.hosts:
        raise Invalid("hosts", f"commune {commune.slug!r} has no domain to log in on")
    bases = [site_base(settings, host, port) for host in commune.hosts]
    attributes = _branding(commune, bases[0] + "/")
    for realm in ACCOUNT_REALMS:
        client = _login_client(
            settings, realm, commune.client_id, bases, attributes, name=commune.name(), enabled=commune.active
        )
        async with connected(settings, realm) as kc:
            await _ensure_client(kc, client)
            await _name_in_emails(kc, realm, commune)


async def _name_in_emails(kc: KeycloakAdmin, realm: str, commune: CommuneLogin) -> None:
    """The realm texts the ``perron`` e-mail theme heads a commune's e-mails with
    (``perronClientName.<client id>``, per language): Keycloak's e-mail templates cannot read
    the client's attributes."""
    for locale in ("fr", "nl", "de", "en"):
        name = commune.names.get(locale) or commune.name()
        response = await kc.connection.a_raw_post(
            f"admin/realms/{realm}/localization/{locale}",
            data=json.dumps({f"perronClientName.{commune.client_id}": name}),
        )
        if response.status_code >= 300:
            raise KeycloakRefused(
                f"Keycloak refused the e-mail name of {commune.client_id} ({response.status_code})"
            )


async def ensure_console_client(settings: Settings, host: str, port: int | None = None) -> None:
    """The console's client ``perron-console`` in the staff realm."""
    base = site_base(settings, host, port)
    attributes = {"perron_name": "Perron", "perron_home": base + "/"}
    client = _login_client(settings, STAFF, CONSOLE_CLIENT, [base], attributes, name="Perron", enabled=True)
    async with connected(settings, STAFF) as kc:
        await _ensure_client(kc, client)


async def disable_orphan_clients(settings: Settings, slugs: set[str]) -> list[str]:
    """Disable ``commune-*`` clients whose commune no longer exists; returns their ids."""
    disabled: list[str] = []
    for realm in ACCOUNT_REALMS:
        async with connected(settings, realm) as kc:
            for client in await kc.a_get_clients():
                client_id = client.get("clientId", "")
                orphan = client_id.startswith(CLIENT_PREFIX) and client_id[len(CLIENT_PREFIX) :] not in slugs
                if orphan and client.get("enabled"):
                    await kc.a_update_client(client["id"], {"clientId": client_id, "enabled": False})
                    disabled.append(f"{realm}/{client_id}")
    return disabled


# The itsme sandbox --------------------------------------------------------------------


def _sandbox_user(person: Mapping[str, Any]) -> dict[str, Any]:
    """A sandbox citizen as Keycloak user, with a fixed id (the ``sub`` itsme gives them
    stays the same across provisionings) and their password and TOTP credentials."""
    address = person["address"]
    otp_data = {
        "subType": "totp",
        "digits": 6,
        "counter": 0,
        "period": 30,
        "algorithm": "HmacSHA1",
        "secretEncoding": "BASE32",
    }
    return {
        "id": str(uuid.uuid5(_SANDBOX_IDS, person["national_number"])),
        "username": person["username"],
        "email": person["email"],
        "emailVerified": True,
        "firstName": person["given_name"],
        "lastName": person["family_name"],
        "enabled": True,
        "attributes": {
            "national_number": [person["national_number"]],
            "birthdate": [person["birthdate"]],
            "locale": [person["locale"]],
            "street": [f"{address['street']} {address['house_number']}"],
            "postal_code": [address["postal_code"]],
            "locality": [address["locality"]],
            "country": [address.get("country", "BE")],
        },
        "credentials": [
            {"type": "password", "value": person["password"], "temporary": False},
            {
                "type": "otp",
                "userLabel": "itsme app (sandbox)",
                "secretData": json.dumps({"value": person["otp_secret"]}),
                "credentialData": json.dumps(otp_data),
            },
        ],
    }


async def _import_sandbox_citizens(settings: Settings, people: Sequence[Mapping[str, Any]]) -> None:
    """Every sandbox citizen, replaced as described (password and OTP included); people no
    longer in the file are deleted."""
    users = [_sandbox_user(person) for person in people]
    wanted = {user["id"] for user in users}
    async with connected(settings, SANDBOX) as kc:
        await kc.a_partial_import_realm(SANDBOX, {"ifResourceExists": "OVERWRITE", "users": users})
        for user in await kc.a_get_users():
            if user["id"] not in wanted:
                await kc.a_delete_user(user["id"])


async def _remove_sandbox(settings: Settings) -> None:
    async with connected(settings, CITIZENS) as kc:
        try:
            provider = await kc.a_get_idp(ITSME)
        except KeycloakError as error:
            if not _missing(error):
                raise
        else:
            if f"/realms/{SANDBOX}" in provider.get("config", {}).get("issuer", ""):
                await kc.a_delete_idp(ITSME)
        try:
            await kc.a_delete_realm(SANDBOX)
            log.warning("keycloak.sandbox_removed")
        except KeycloakError as error:
            if not _missing(error):
                raise


# Accounts -----------------------------------------------------------------------------


def _check_account(realm: str, user_id: str) -> None:
    if realm not in ACCOUNT_REALMS:
        raise Invalid("realm", f"must be one of {', '.join(ACCOUNT_REALMS)}")
    if not user_id or any(c in user_id for c in "/?#%\\") or len(user_id) > 255:
        raise Invalid("user_id", "is not a Keycloak account id")


async def create_staff_user(
    settings: Settings,
    email: str,
    first_name: str,
    last_name: str,
    language: str,
    *,
    client_id: str | None = None,
    redirect_uri: str | None = None,
) -> str:
    """A staff account that must choose its password and set up its authenticator app at
    first login; returns its Keycloak id. With SMTP configured, Keycloak e-mails the person a
    link (valid 72 hours) to do both; if that e-mail cannot be sent, nothing is kept."""
    address = _check_email(email)
    if redirect_uri and not client_id:
        raise Invalid("client_id", "a redirect URI needs the client it belongs to")
    if language not in LANGUAGES:
        raise Invalid("language", f"must be one of {', '.join(LANGUAGES)}")
    if not first_name.strip() or not last_name.strip():
        raise Invalid("name", "first and last name are required")
    user = {
        "username": address,
        "email": address,
        "emailVerified": True,
        "firstName": first_name.strip(),
        "lastName": last_name.strip(),
        "enabled": True,
        "attributes": {"locale": [language]},
        "requiredActions": STAFF_ACTIONS,
    }
    async with connected(settings, STAFF) as kc:
        if await kc.a_get_users({"email": address, "exact": True}):
            raise Conflict(f"a staff account already uses {address}")
        try:
            user_id = await kc.a_create_user(user)
        except KeycloakError as error:
            if error.response_code == 409:
                raise Conflict(f"a staff account already uses {address}") from error
            raise
        if settings.smtp_host:
            await _send_actions_email(kc, user_id, client_id, redirect_uri)
    return user_id


async def _send_actions_email(
    kc: KeycloakAdmin, user_id: str, client_id: str | None, redirect_uri: str | None
) -> None:
    try:
        await kc.a_send_update_account(
            user_id,
            STAFF_ACTIONS,
            client_id=client_id,
            lifespan=STAFF_LINK_LIFESPAN_SECONDS,
            redirect_uri=redirect_uri,
        )
    except KeycloakError as error:
        await kc.a_delete_user(user_id)
        raise KeycloakRefused(f"Keycloak could not send the invitation e-mail: {_text(error)}") from error


def _check_email(email: str) -> str:
    address = email.strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in address):
        raise Invalid("email", "must be an e-mail address such as name@commune.be")
    return address


async def ensure_demo_staff_user(settings: Settings, email: str, first: str, last: str, password: str) -> str:
    """A staff login with a known password (development only: ``perron dev`` shows it), which
    sets up its one-time code at the first login like every staff login."""
    if settings.env == "production":
        raise Invalid("env", "demo logins are never made in production")
    async with connected(settings, STAFF) as kc:
        found = await kc.a_get_users({"email": email, "exact": True})
        if found:
            return str(found[0]["id"])
        user_id: str = await kc.a_create_user(
            {
                "username": email,
                "email": email,
                "emailVerified": True,
                "firstName": first,
                "lastName": last,
                "enabled": True,
                "requiredActions": ["CONFIGURE_TOTP"],
                "credentials": [{"type": "password", "value": password, "temporary": False}],
            }
        )
    return user_id


async def find_user(settings: Settings, realm: str, user_id: str) -> dict[str, Any] | None:
    """Keycloak's view of an account (a UserRepresentation), or None when it does not exist."""
    _check_account(realm, user_id)
    async with connected(settings, realm) as kc:
        try:
            user: dict[str, Any] = await kc.a_get_user(user_id)
        except KeycloakError as error:
            if _missing(error):
                return None
            raise
    return user


async def delete_user(settings: Settings, realm: str, user_id: str) -> bool:
    """Delete an account; False when there was none."""
    _check_account(realm, user_id)
    async with connected(settings, realm) as kc:
        try:
            await kc.a_delete_user(user_id)
        except KeycloakError as error:
            if _missing(error):
                return False
            raise
    return True


async def logout_user(settings: Settings, realm: str, user_id: str) -> None:
    """End every Keycloak session of an account (its clients get back-channel logouts)."""
    _check_account(realm, user_id)
    async with connected(settings, realm) as kc:
        try:
            await kc.a_user_logout(user_id)
        except KeycloakError as error:
            if _missing(error):
                raise NotFound(f"no account {user_id} in realm {realm}") from None
            raise


# Status -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RealmState:
    realm: str
    exists: bool
    commune_clients: int = 0
    enabled_commune_clients: int = 0
    identity_providers: tuple[str, ...] = ()
    users: int | None = None


async def status(settings: Settings) -> tuple[str, list[RealmState]]:
    """Keycloak's version and the state of each realm Perron uses."""
    realms = [CITIZENS, STAFF, SANDBOX] if settings.uses_itsme_sandbox else [CITIZENS, STAFF]
    async with connected(settings) as kc:
        version = (await kc.a_get_server_info())["systemInfo"]["version"]
        existing = {realm["realm"] for realm in await kc.a_get_realms()}
    states = []
    for realm in realms:
        if realm not in existing:
            states.append(RealmState(realm, exists=False))
            continue
        async with connected(settings, realm) as kc:
            clients = [c for c in await kc.a_get_clients() if c.get("clientId", "").startswith(CLIENT_PREFIX)]
            providers = tuple(p["alias"] for p in await kc.a_get_idps())
            users = await kc.a_users_count() if realm == SANDBOX else None
        states.append(
            RealmState(
                realm,
                exists=True,
                commune_clients=len(clients),
                enabled_commune_clients=sum(1 for c in clients if c.get("enabled")),
                identity_providers=providers,
                users=users,
            )
        )
    return version, states
