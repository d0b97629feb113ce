"""Changing accounts: created at login or by staff on paper, addresses, residency, deletion."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from perron import audit, signals
from perron.db.base import utcnow
from perron.db.repository import ensure_tenant
from perron.errors import Invalid, NotFound
from perron.identity.models import Account, AccountKind, Assurance, WebSession
from perron.tenancy.models import LANGUAGES

ROLE_NAME_MAX = 63


def _clean(value: str | None, field: str, limit: int) -> str | None:
    if value is None:
        return None
    text = " ".join(value.split())
    if len(text) > limit:
        raise Invalid(field, f"at most {limit} characters")
    return text or None


def _check_postcode(postcode: str | None) -> str | None:
    if postcode is None:
        return None
    text = postcode.strip()
    if not (len(text) == 4 and text.isdigit() and text[0] != "0"):
        raise Invalid("postcode", f"{postcode!r} is not a Belgian postcode (four digits, 1000 to 9999)")
    return text


async def get_account(session: AsyncSession, account_id: UUID) -> Account:
    account = await session.scalar(select(Account).where(Account.id == account_id))
    if account is None:
        raise NotFound(f"no account {account_id} in this commune")
    return account


async def create_account(
    session: AsyncSession,
    commune_id: UUID,
    *,
    display_name: str,
    kind: AccountKind = AccountKind.CITIZEN,
    subject: str | None = None,
    email: str | None = None,
    language: str = "fr",
    roles: Iterable[str] = (),
    assurance: Assurance = Assurance.NONE,
    birth_year: int | None = None,
    street: str | None = None,
    house_number: str | None = None,
    postcode: str | None = None,
    resident: bool = False,
    residency_method: str = "town_hall",
) -> Account:
    """Register a person in a commune (at login, or by staff for someone who uses paper)."""
    ensure_tenant(commune_id)
    name = _clean(display_name, "display_name", 200)
    if not name:
        raise Invalid("display_name", "a name is required")
    if language not in LANGUAGES:
        raise Invalid("language", f"choose among {', '.join(LANGUAGES)}")
    if email is not None and ("@" not in email or len(email) > 254 or " " in email.strip()):
        raise Invalid("email", f"{email!r} is not an e-mail address")
    role_list = sorted({role.strip() for role in roles if role.strip()})
    if role_list and kind is not AccountKind.STAFF:
        raise Invalid("roles", "only staff accounts hold roles")
    for role in role_list:
        if len(role) > ROLE_NAME_MAX:
            raise Invalid("roles", f"role names are at most {ROLE_NAME_MAX} characters")
    if subject is not None:
        taken = await session.scalar(select(Account.id).where(Account.subject == subject))
        if taken is not None:
            raise Invalid("subject", "this identity already has an account in the commune")
    account = Account(
        tenant_id=commune_id,
        subject=subject,
        kind=kind,
        display_name=name,
        email=email.strip().lower() if email else None,
        language=language,
        roles=role_list,
        assurance=int(assurance),
        birth_year=birth_year,
        street=_clean(street, "street", 200),
        house_number=_clean(house_number, "house_number", 20),
        postcode=_check_postcode(postcode),
        residency_verified_at=utcnow() if resident else None,
        residency_method=residency_method if resident else None,
    )
    session.add(account)
    await session.flush()
    audit.record(
        session,
        tenant_id=commune_id,
        action="account.create",
        object_type="account",
        object_id=str(account.id),
        changes={"kind": kind.value, "roles": role_list, "resident": resident},
    )
    signals.account_created.send(session, signals.AccountEvent(account.id), tenant_id=commune_id)
    if resident:
        signals.residency_verified.send(session, signals.AccountEvent(account.id), tenant_id=commune_id)
    return account


async def change_address(
    session: AsyncSession,
    account: Account,
    *,
    street: str | None,
    house_number: str | None,
    postcode: str | None,
) -> bool:
    """Move a person (their memberships tied to places follow, through ``address_changed``)."""
    ensure_tenant(account.tenant_id)
    old = (account.street, account.house_number, account.postcode)
    new = (_clean(street, "street", 200), _clean(house_number, "house_number", 20), _check_postcode(postcode))
    if old == new:
        return False
    account.street, account.house_number, account.postcode = new
    audit.record(
        session,
        tenant_id=account.tenant_id,
        action="account.address",
        object_type="account",
        object_id=str(account.id),
        changes=audit.diff(
            dict(zip(("street", "house_number", "postcode"), old, strict=True)),
            dict(zip(("street", "house_number", "postcode"), new, strict=True)),
        ),
    )
    signals.address_changed.send(
        session, signals.AddressChanged(account.id, old, new), tenant_id=account.tenant_id
    )
    return True


RESIDENCY_METHODS = ("itsme", "code", "town_hall")


async def verify_residency(session: AsyncSession, account: Account, *, how: str) -> bool:
    """Record that a person lives in the commune, and how: ``itsme`` (the address itsme gave),
    ``code`` (the paper code sent by post), ``town_hall`` (staff saw an identity document)."""
    ensure_tenant(account.tenant_id)
    if how not in RESIDENCY_METHODS:
        raise ValueError(f"unknown way of verifying residency: {how!r}")
    if account.residency_verified_at is not None:
        return False
    account.residency_verified_at = utcnow()
    account.residency_method = how
    audit.record(
        session,
        tenant_id=account.tenant_id,
        action="account.residency_verified",
        object_type="account",
        object_id=str(account.id),
        changes={"how": how},
    )
    signals.residency_verified.send(session, signals.AccountEvent(account.id), tenant_id=account.tenant_id)
    return True


async def delete_account(session: AsyncSession, account: Account) -> None:
    """Remove a person: sessions end, modules erase what they hold (``account_deleted``)."""
    ensure_tenant(account.tenant_id)
    await session.execute(delete(WebSession).where(WebSession.account_id == account.id))
    audit.record(
        session,
        tenant_id=account.tenant_id,
        action="account.delete",
        object_type="account",
        object_id=str(account.id),
        changes={},
    )
    signals.account_deleted.send(session, signals.AccountEvent(account.id), tenant_id=account.tenant_id)
    await session.delete(account)
