"""Server-side sessions: the browser holds an opaque token, the database the rest.

The cookie has no ``Domain`` attribute (it belongs to the one host that set it), is
``HttpOnly`` and ``SameSite=Lax``, and ``Secure`` over HTTPS. A token presented to another
commune's host finds nothing: sessions are read in the commune's own scope.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from perron.db.base import utcnow
from perron.db.repository import ensure_tenant
from perron.identity.models import Account, AccountKind, Assurance, WebSession

SESSION_COOKIE = "perron_session"
SESSION_LIFETIME = dt.timedelta(hours=12)


def token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CurrentUser:
    """Who is making the request, as pages and guards see it."""

    account_id: UUID
    session_key: str
    display_name: str
    kind: AccountKind
    roles: frozenset[str]
    assurance: Assurance
    """What this login proved."""
    resident: bool
    language: str
    acting_for: UUID | None = None

    @property
    def is_staff(self) -> bool:
        return self.kind is AccountKind.STAFF

    def has_role(self, role: str) -> bool:
        return role in self.roles or (self.is_staff and "admin" in self.roles)


async def open_session(
    session: AsyncSession,
    account: Account,
    assurance: Assurance,
    *,
    lifetime: dt.timedelta = SESSION_LIFETIME,
    realm: str | None = None,
    oidc_sid: str | None = None,
    id_token: str | None = None,
    auth_time: dt.datetime | None = None,
) -> str:
    """Start a login for ``account``; returns the token to put in the cookie. A login through
    Keycloak also keeps its realm, Keycloak's session id (for back-channel logout) and the ID
    token (for logging out at Keycloak), server-side only."""
    ensure_tenant(account.tenant_id)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        WebSession(
            tenant_id=account.tenant_id,
            id=token_key(token),
            account_id=account.id,
            assurance=int(assurance),
            auth_time=auth_time or now,
            created_at=now,
            expires_at=now + lifetime,
            realm=realm,
            oidc_sid=oidc_sid,
            id_token=id_token,
        )
    )
    account.last_login_at = now
    if assurance > account.assurance:
        account.assurance = int(assurance)
    return token


async def close_session(session: AsyncSession, token: str) -> None:
    await session.execute(delete(WebSession).where(WebSession.id == token_key(token)))


async def load_user(session: AsyncSession, token: str) -> CurrentUser | None:
    """The person behind a cookie in the commune in scope, or None (unknown, expired, disabled)."""
    key = token_key(token)
    row = (
        await session.execute(
            select(WebSession, Account)
            .join(
                Account, (Account.tenant_id == WebSession.tenant_id) & (Account.id == WebSession.account_id)
            )
            .where(WebSession.id == key, WebSession.expires_at > utcnow(), Account.disabled.is_(False))
        )
    ).first()
    if row is None:
        return None
    web_session, account = row
    return CurrentUser(
        account_id=account.id,
        session_key=key,
        display_name=account.display_name,
        kind=account.kind,
        roles=frozenset(account.roles or ()),
        assurance=Assurance(web_session.assurance),
        resident=account.is_resident,
        language=account.language,
        acting_for=web_session.acting_for,
    )
