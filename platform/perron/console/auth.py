"""Who is using the console, and what they may see.

People log in to the console through Keycloak's ``staff`` realm (client ``perron-console``:
password and a second factor), with the same checks as a commune's login (PKCE, state bound
to the browser, nonce, issuer, audience). What they may do comes from Perron, never from
Keycloak: their :class:`~perron.identity.models.PlatformRole` rows, read again on every
request so that a role taken away takes effect at once.

* an **operator** sees and manages the whole deployment;
* an **intercommunale administrator** sees only the intercommunales they administer and
  their member communes. Anything else answers 404, as if it did not exist.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any
from uuid import UUID

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from perron.audit import Actor, ActorKind
from perron.console.models import ConsoleLoginAttempt, ConsoleSession
from perron.db.base import utcnow
from perron.identity.keycloak import CONSOLE_CLIENT
from perron.identity.login import ATTEMPT_LIFETIME, Begun, open_id_token, seal_id_token
from perron.identity.models import PlatformRole
from perron.identity.oidc import AuthorizationRequest, LoginRefused, Provider, authorization_url, pkce_pair
from perron.identity.roles import INTERCOMMUNALE_ADMIN, OPERATOR
from perron.identity.sessions import token_key
from perron.tenancy.models import LANGUAGES

CONSOLE_COOKIE = "perron_console"
CONSOLE_LOGIN_COOKIE = "perron_console_login"
CONSOLE_SESSION_LIFETIME = dt.timedelta(hours=8)


def console_token(scope: Any) -> str | None:
    """The console session's token in a request's cookies (None without a usable one)."""
    for name, value in scope.get("headers", ()):
        if name != b"cookie":
            continue
        try:
            morsel = SimpleCookie(value.decode("latin-1")).get(CONSOLE_COOKIE)
        except CookieError:
            return None
        if morsel is not None and morsel.value and len(morsel.value) <= 128:
            return morsel.value
    return None


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """A person logged in to the console, with the roles they hold right now."""

    session_key: str
    email: str
    subject: str
    display_name: str
    language: str
    operator: bool
    intercommunale_ids: frozenset[UUID]

    def administers(self, intercommunale_id: UUID | None) -> bool:
        """Whether this person manages the intercommunale (operators manage them all)."""
        return self.operator or (
            intercommunale_id is not None and intercommunale_id in self.intercommunale_ids
        )

    @property
    def actor(self) -> Actor:
        return Actor(ActorKind.PERSON, f"{self.display_name} <{self.email}>"[:200])


async def begin_login(
    session: AsyncSession,
    provider: Provider,
    *,
    redirect_uri: str,
    next_path: str,
    language: str,
    browser_token: str | None,
) -> Begun:
    """Record a console login attempt and return where to send the browser."""
    metadata = await provider.metadata(fresh=True)
    browser_token = browser_token or secrets.token_urlsafe(24)
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    verifier, challenge = pkce_pair()
    now = utcnow()
    # Each login start also forgets what has expired: attempts never finished, ended sessions.
    await session.execute(delete(ConsoleLoginAttempt).where(ConsoleLoginAttempt.expires_at < now))
    await session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now))
    session.add(
        ConsoleLoginAttempt(
            id=token_key(state),
            browser_key=token_key(browser_token),
            nonce=nonce,
            code_verifier=verifier,
            next_path=next_path,
            created_at=now,
            expires_at=now + ATTEMPT_LIFETIME,
        )
    )
    request = AuthorizationRequest(
        redirect_uri=redirect_uri, state=state, nonce=nonce, code_challenge=challenge, ui_locales=language
    )
    return Begun(
        authorization_url(metadata["authorization_endpoint"], CONSOLE_CLIENT, request), browser_token
    )


async def take_attempt(session: AsyncSession, state: str, browser_token: str | None) -> ConsoleLoginAttempt:
    """The attempt ``state`` names, removed so that it cannot serve twice."""
    attempt = await session.get(ConsoleLoginAttempt, token_key(state), with_for_update=True)
    if attempt is None:
        raise LoginRefused("unknown_state", "no console login in progress has this state")
    await session.delete(attempt)
    await session.flush()
    if attempt.expires_at < utcnow():
        raise LoginRefused("expired_state", "the login took too long")
    if browser_token is None or not hmac.compare_digest(attempt.browser_key, token_key(browser_token)):
        raise LoginRefused("other_browser", "the login was started in another browser")
    return attempt


@dataclass(frozen=True, slots=True)
class ConsoleLogin:
    token: str
    next_path: str
    email: str


async def finish_login(
    session: AsyncSession,
    provider: Provider,
    settings: Any,
    attempt: ConsoleLoginAttempt,
    *,
    code: str,
    issuer_param: str | None,
    redirect_uri: str,
    previous_token: str | None,
) -> ConsoleLogin:
    """Complete a console login; refuses anyone who holds no platform role."""
    metadata = await provider.metadata()
    if issuer_param is not None and issuer_param != provider.issuer:
        raise LoginRefused("wrong_issuer", f"the answer comes from {issuer_param!r}")
    if issuer_param is None and metadata.get("authorization_response_iss_parameter_supported"):
        raise LoginRefused("wrong_issuer", "the answer does not say who sent it")
    tokens = await provider.exchange_code(
        code=code, redirect_uri=redirect_uri, client_id=CONSOLE_CLIENT, verifier=attempt.code_verifier
    )
    claims = await provider.validate_id_token(
        tokens["id_token"], client_id=CONSOLE_CLIENT, nonce=attempt.nonce
    )
    subject = str(claims["sub"])
    email = str(claims.get("email") or "").strip().lower()
    roles = await _roles_at_login(session, subject, email)
    if not roles:
        raise LoginRefused("no_console_role", f"{email or subject} holds no operator or intercommunale role")
    if previous_token:
        await session.execute(delete(ConsoleSession).where(ConsoleSession.id == token_key(previous_token)))
    name = str(claims.get("name") or email or subject)[:200]
    locale = str(claims.get("locale") or "")[:2]
    token = open_console_session(
        session,
        email=email,
        subject=subject,
        display_name=name,
        language=locale if locale in LANGUAGES else "",
        oidc_sid=str(claims.get("sid") or "")[:64] or None,
        id_token=seal_id_token(settings, tokens["id_token"]),
    )
    return ConsoleLogin(token, attempt.next_path, email)


async def _roles_at_login(session: AsyncSession, subject: str, email: str) -> list[PlatformRole]:
    """The person's platform roles: those already bound to their Keycloak identity, and those
    granted to their e-mail address that no identity holds yet (bound now)."""
    roles = list(await session.scalars(select(PlatformRole).where(_held_by(subject, email))))
    for role in roles:
        if role.subject is None:
            role.subject = subject
    return roles


def _held_by(subject: str, email: str) -> Any:
    """Roles bound to the Keycloak identity, or granted to its e-mail and not bound yet."""
    if not email:
        return PlatformRole.subject == subject
    return or_(
        PlatformRole.subject == subject, PlatformRole.subject.is_(None) & (PlatformRole.email == email)
    )


def open_console_session(
    session: AsyncSession,
    *,
    email: str,
    subject: str,
    display_name: str,
    language: str = "",
    oidc_sid: str | None = None,
    id_token: str | None = None,
    lifetime: dt.timedelta = CONSOLE_SESSION_LIFETIME,
) -> str:
    """Start a console session; returns the token to put in the cookie."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        ConsoleSession(
            id=token_key(token),
            email=email,
            subject=subject,
            display_name=display_name,
            language=language,
            oidc_sid=oidc_sid,
            id_token=id_token,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
        )
    )
    return token


async def load_console_user(session: AsyncSession, token: str) -> ConsoleUser | None:
    """The person behind a console cookie with the roles they hold now, or None (unknown,
    expired, or no role any more)."""
    key = token_key(token)
    row = await session.get(ConsoleSession, key)
    if row is None or row.expires_at <= utcnow():
        return None
    roles = list(await session.scalars(select(PlatformRole).where(_held_by(row.subject, row.email))))
    operator = any(role.role == OPERATOR for role in roles)
    bodies = frozenset(
        role.intercommunale_id
        for role in roles
        if role.role == INTERCOMMUNALE_ADMIN and role.intercommunale_id
    )
    if not operator and not bodies:
        return None
    return ConsoleUser(key, row.email, row.subject, row.display_name, row.language, operator, bodies)


async def end_console_session(session: AsyncSession, token: str, settings: Any) -> str | None:
    """Delete the session; returns its ID token (to log out at Keycloak too), if any."""
    row = await session.get(ConsoleSession, token_key(token))
    if row is None:
        return None
    sealed = row.id_token
    await session.delete(row)
    return open_id_token(settings, sealed) if sealed else None


async def end_sessions_of(session: AsyncSession, *, sid: str | None, subject: str | None) -> int:
    """Back-channel logout: end the console sessions of a Keycloak session (or identity)."""
    if sid:
        query = delete(ConsoleSession).where(ConsoleSession.oidc_sid == sid)
    elif subject:
        query = delete(ConsoleSession).where(ConsoleSession.subject == subject)
    else:
        return 0
    result = await session.execute(query)
    return int(getattr(result, "rowcount", 0) or 0)
