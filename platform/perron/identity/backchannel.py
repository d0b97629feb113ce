"""Back-channel logout: Keycloak tells Perron that a login ended (the person logged out at
Keycloak, an admin ended their sessions, their account was disabled) and Perron ends the
matching sessions at once.

Keycloak posts a signed logout token to ``/_oidc/backchannel-logout`` (OpenID Connect
Back-Channel Logout 1.0). The endpoint answers on any host, because Keycloak reaches the
deployment by an internal address; the token's audience (``commune-<slug>``) names the
commune, and only that commune's sessions are touched.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import delete, select

from perron.db.scope import platform_scope, tenant_scope
from perron.errors import NotFound
from perron.identity.keycloak import CONSOLE_CLIENT
from perron.identity.models import Account, WebSession
from perron.identity.oidc import LoginRefused, slug_of_client, unverified_claims
from perron.logging import get_logger
from perron.tenancy.actions import get_commune

log = get_logger("perron.identity")

PATH = "/_oidc/backchannel-logout"
MAX_BODY = 64 * 1024


async def handle(runtime: Any, body: bytes) -> tuple[int, dict[str, str]]:
    """End the sessions a logout token names; returns the HTTP status and JSON body."""
    if not runtime.settings.login_enabled:
        return 404, {"error": "not_found"}
    try:
        form = parse_qs(body.decode("ascii"), strict_parsing=False)
        raw = (form.get("logout_token") or [""])[0]
        if not raw:
            raise LoginRefused("no_token", "no logout_token in the request")
        provider = runtime.identity.by_issuer(unverified_claims(raw).get("iss"))
        if provider is None:
            raise LoginRefused("wrong_issuer", "the logout token comes from an unknown issuer")
        claims = await provider.validate_logout_token(raw)
    except (LoginRefused, UnicodeDecodeError) as error:
        log.warning(
            "logout.backchannel_refused", reason=getattr(error, "reason", "bad_encoding"), detail=str(error)
        )
        return 400, {"error": "invalid_request"}
    audience = claims["aud"] if isinstance(claims["aud"], str) else claims["aud"][0]
    if audience == CONSOLE_CLIENT:
        return await _console_logout(runtime, claims)
    slug = slug_of_client(audience)
    try:
        if slug is None:
            raise NotFound(audience)
        async with runtime.database.session() as session:
            with platform_scope("find the commune a back-channel logout is for"):
                commune = await get_commune(session, slug)
    except NotFound:
        log.warning("logout.backchannel_unknown_client", client=audience)
        return 400, {"error": "invalid_request"}
    with tenant_scope(commune.id):
        async with runtime.database.transaction() as session:
            query = delete(WebSession).where(WebSession.realm == provider.realm)
            if claims.get("sid"):
                query = query.where(WebSession.oidc_sid == str(claims["sid"]))
            else:
                accounts = select(Account.id).where(Account.subject == str(claims["sub"]))
                query = query.where(WebSession.account_id.in_(accounts))
            result = await session.execute(query)
    ended = getattr(result, "rowcount", 0)
    log.info("logout.backchannel", commune=slug, realm=provider.realm, sessions=ended)
    return 200, {}


async def _console_logout(runtime: Any, claims: dict[str, Any]) -> tuple[int, dict[str, str]]:
    """The login ended at Keycloak: end the console sessions it opened."""
    from perron.console.auth import end_sessions_of

    with platform_scope("end console sessions on a back-channel logout"):
        async with runtime.database.transaction() as session:
            sid, subject = str(claims.get("sid") or ""), str(claims.get("sub") or "")
            ended = await end_sessions_of(session, sid=sid or None, subject=subject or None)
    log.info("logout.backchannel", console=True, sessions=ended)
    return 200, {}
