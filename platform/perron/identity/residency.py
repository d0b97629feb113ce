"""Verifying that a person lives in the commune without itsme: a code sent by post, or the
town hall.

* **Paper code.** Staff issue a single-use code for an account at an address of the commune
  (a street of its territory). The code (8 characters of an alphabet without 0/O/1/I) is
  shown once, on the letter staff print and post; only its keyed hash is stored. The person
  types it at ``/account/residency``: the right code verifies their residency and sets their
  address to the code's. Each wrong code counts against every live code of the account; the
  fifth locks them. Issuing a new code retires the earlier ones (a lost letter stops working).
* **Town hall.** Staff who saw an identity document verify an existing account's residency,
  or register a person without a smartphone (an account with no login, resident at once).

Every change is audited with the staff member who made it; a refused attempt changes
nothing but the count of wrong tries.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from perron import audit, signals
from perron.audit import current_actor
from perron.config import Settings
from perron.db.base import utcnow
from perron.db.repository import ensure_owned, ensure_tenant
from perron.errors import Invalid
from perron.i18n import gettext
from perron.identity import actions
from perron.identity.models import Account, AccountKind, ResidencyCode
from perron.logging import get_logger
from perron.tenancy.models import Commune
from perron.territory import service as territory

log = get_logger("perron.identity.residency")

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
"""32 characters: digits and capitals without 0, O, 1 and I, which people confuse."""
CODE_LENGTH = 8
CODE_LIFETIME = dt.timedelta(days=60)
MAX_WRONG_TRIES = 5
HOUSE_NUMBER_MAX = 20
OLDEST_BIRTH_YEAR = 1900
SEARCH_LIMIT = 50


# --- Codes -------------------------------------------------------------------------------


def _code_hash(settings: Settings, account: Account, code: str) -> str:
    """Keyed hash of a code, bound to its account and commune: a stolen table reveals no
    code, and a code is worth nothing on another account."""
    message = f"perron-residency-code:{account.tenant_id}:{account.id}:{code}".encode()
    return hmac.new(settings.secret().encode(), message, hashlib.sha256).hexdigest()


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def display_code(code: str) -> str:
    """``ABCD2345`` → ``ABCD-2345``, easier to copy from paper."""
    half = CODE_LENGTH // 2
    return f"{code[:half]}-{code[half:]}"


def normalise_code(typed: str) -> str:
    """What a person typed, as a code: spaces and dashes dropped, capitals. ``Invalid`` when
    it cannot be a code at all (it then counts as no try)."""
    text = "".join(typed.split()).replace("-", "").replace("‐", "").replace("–", "").upper()
    if not text:
        raise Invalid("code", gettext("Type the code printed on the letter."))
    if len(text) != CODE_LENGTH or any(character not in CODE_ALPHABET for character in text):
        raise Invalid(
            "code",
            gettext(
                "A code has %(count)s letters and digits, such as ABCD-2345 (there is no 0, O, 1 or I "
                "in a code). Check what you typed."
            )
            % {"count": CODE_LENGTH},
        )
    return text


class CodeState(StrEnum):
    WAITING = "waiting"
    USED = "used"
    EXPIRED = "expired"
    """Past its 60 days, or replaced by a newer code."""
    LOCKED = "locked"


def code_state(code: ResidencyCode, now: dt.datetime | None = None) -> CodeState:
    if code.used_at is not None:
        return CodeState.USED
    if code.expires_at <= (now or utcnow()):
        return CodeState.EXPIRED
    if code.attempts >= MAX_WRONG_TRIES:
        return CodeState.LOCKED
    return CodeState.WAITING


@dataclass(frozen=True)
class IssuedCode:
    """A code just issued: ``code`` is the only time the code exists in clear."""

    code: str
    record: ResidencyCode

    @property
    def display(self) -> str:
        return display_code(self.code)


async def issue_code(
    session: AsyncSession,
    settings: Settings,
    account: Account,
    *,
    street: str,
    house_number: str | None,
    postcode: str,
) -> IssuedCode:
    """Issue a paper code for ``account`` at an address of the commune (earlier codes of the
    account stop working). The caller prints ``code`` on the letter; it is not stored."""
    ensure_owned(account)
    _check_citizen(account)
    if account.is_resident:
        raise Invalid("account", gettext("This person's residency is already verified."))
    street_name, number, code_postcode = await commune_address(
        session, account.tenant_id, street=street, house_number=house_number, postcode=postcode
    )
    now = utcnow()
    replaced = 0
    for earlier in await codes_of(session, account):
        if code_state(earlier, now) in (CodeState.WAITING, CodeState.LOCKED):
            earlier.expires_at = now
            replaced += 1
    code = new_code()
    record = ResidencyCode(
        tenant_id=account.tenant_id,
        account_id=account.id,
        code_hash=_code_hash(settings, account, code),
        street=street_name,
        house_number=number,
        postcode=code_postcode,
        created_at=now,
        created_by=current_actor().label[:200],
        expires_at=now + CODE_LIFETIME,
        attempts=0,
    )
    session.add(record)
    await session.flush()
    audit.record(
        session,
        tenant_id=account.tenant_id,
        action="residency.code_issued",
        object_type="account",
        object_id=str(account.id),
        changes={
            "code_id": str(record.id),
            "address": [street_name, number, code_postcode],
            "expires_at": record.expires_at.isoformat(),
            "replaced_codes": replaced,
        },
    )
    return IssuedCode(code, record)


async def codes_of(session: AsyncSession, account: Account) -> list[ResidencyCode]:
    """Every code issued for the account, newest first."""
    rows = await session.scalars(
        select(ResidencyCode)
        .where(ResidencyCode.account_id == account.id)
        .order_by(ResidencyCode.created_at.desc(), ResidencyCode.id.desc())
    )
    return list(rows)


async def get_code(session: AsyncSession, account: Account, code_id: UUID) -> ResidencyCode | None:
    """One of the account's codes (None for another account's)."""
    found: ResidencyCode | None = await session.scalar(
        select(ResidencyCode).where(ResidencyCode.id == code_id, ResidencyCode.account_id == account.id)
    )
    return found


class CodeOutcome(StrEnum):
    VERIFIED = "verified"
    WRONG = "wrong"
    LOCKED = "locked"
    EXPIRED = "expired"
    USED = "used"
    NO_CODE = "no_code"
    ALREADY_RESIDENT = "already_resident"


@dataclass(frozen=True)
class CodeCheck:
    outcome: CodeOutcome
    tries_left: int = 0

    @property
    def verified(self) -> bool:
        return self.outcome is CodeOutcome.VERIFIED


async def enter_code(session: AsyncSession, settings: Settings, account: Account, typed: str) -> CodeCheck:
    """Check the code a person typed. The right live code verifies their residency at the
    code's address; anything else changes nothing except the count of wrong tries, which the
    caller must commit too (so return, never raise, once a try was counted)."""
    ensure_owned(account)
    code = normalise_code(typed)
    if account.is_resident:
        return CodeCheck(CodeOutcome.ALREADY_RESIDENT)
    now = utcnow()
    issued = await codes_of(session, account)
    typed_hash = _code_hash(settings, account, code)
    matched = next((row for row in issued if hmac.compare_digest(row.code_hash, typed_hash)), None)
    if matched is not None:
        state = code_state(matched, now)
        if state is CodeState.WAITING:
            await _use(session, account, matched, issued, now)
            return CodeCheck(CodeOutcome.VERIFIED)
        log.info("residency.code_refused", account=str(account.id), state=state.value)
        return CodeCheck(
            {
                CodeState.USED: CodeOutcome.USED,
                CodeState.EXPIRED: CodeOutcome.EXPIRED,
                CodeState.LOCKED: CodeOutcome.LOCKED,
            }[state]
        )
    live = [row for row in issued if code_state(row, now) is CodeState.WAITING]
    if not live:
        states = {code_state(row, now) for row in issued}
        if CodeState.LOCKED in states:
            return CodeCheck(CodeOutcome.LOCKED)
        if CodeState.EXPIRED in states:
            return CodeCheck(CodeOutcome.EXPIRED)
        return CodeCheck(CodeOutcome.NO_CODE)
    locked_now = []
    for row in live:
        row.attempts += 1
        if row.attempts >= MAX_WRONG_TRIES:
            locked_now.append(str(row.id))
    log.info("residency.code_wrong", account=str(account.id))
    if locked_now:
        audit.record(
            session,
            tenant_id=account.tenant_id,
            action="residency.code_locked",
            object_type="account",
            object_id=str(account.id),
            changes={"code_ids": locked_now, "wrong_tries": MAX_WRONG_TRIES},
        )
    still_live = [row for row in live if row.attempts < MAX_WRONG_TRIES]
    if not still_live:
        return CodeCheck(CodeOutcome.LOCKED)
    return CodeCheck(CodeOutcome.WRONG, max(MAX_WRONG_TRIES - row.attempts for row in still_live))


async def _use(
    session: AsyncSession,
    account: Account,
    code: ResidencyCode,
    issued: list[ResidencyCode],
    now: dt.datetime,
) -> None:
    code.used_at = now
    for other in issued:
        if other is not code and code_state(other, now) in (CodeState.WAITING, CodeState.LOCKED):
            other.expires_at = now
    await actions.change_address(
        session, account, street=code.street, house_number=code.house_number, postcode=code.postcode
    )
    audit.record(
        session,
        tenant_id=account.tenant_id,
        action="residency.code_used",
        object_type="account",
        object_id=str(account.id),
        changes={"code_id": str(code.id)},
    )
    await actions.verify_residency(session, account, how="code")


async def _erase_codes(ctx: signals.SignalContext, event: signals.AccountEvent) -> None:
    """A deleted account's codes go with it (they hold its address)."""
    await ctx.session.execute(delete(ResidencyCode).where(ResidencyCode.account_id == event.account_id))


signals.account_deleted.connect(_erase_codes, module=None)


# --- Town hall ---------------------------------------------------------------------------


def _check_citizen(account: Account) -> None:
    if account.kind is not AccountKind.CITIZEN:
        raise Invalid(
            "account", gettext("Residency is verified for residents' accounts, not staff accounts.")
        )
    if account.disabled:
        raise Invalid("account", gettext("This account is closed."))


def _house_number(value: str | None) -> str:
    text = " ".join((value or "").split())
    if not text:
        raise Invalid("house_number", gettext("Write the house number (and box, if any)."))
    if len(text) > HOUSE_NUMBER_MAX:
        raise Invalid(
            "house_number",
            gettext("A house number has at most %(count)s characters.") % {"count": HOUSE_NUMBER_MAX},
        )
    if not any(character.isdigit() for character in text):
        raise Invalid("house_number", gettext("A house number starts with a number, such as 12 or 12A."))
    return text


async def commune_address(
    session: AsyncSession, commune_id: UUID, *, street: str, house_number: str | None, postcode: str
) -> tuple[str, str, str]:
    """An address in the commune: (official street name, house number, postcode).
    ``Invalid`` when the street is not one of the commune's territory."""
    ensure_tenant(commune_id)
    if not street or not street.strip():
        raise Invalid("street", gettext("Choose the street."))
    number = _house_number(house_number)
    found = await territory.find_street(session, street=street, postcode=postcode or "")
    if found is None:
        raise Invalid(
            "street",
            gettext("“%(street)s” (%(postcode)s) is not a street of the commune.")
            % {"street": street.strip()[:80], "postcode": (postcode or "").strip()[:10]},
        )
    languages = await session.scalar(select(Commune.languages).where(Commune.id == commune_id))
    return found.name((languages or ["fr"])[0]), number, found.postcode


async def verify_at_town_hall(
    session: AsyncSession,
    account: Account,
    *,
    street: str,
    house_number: str | None,
    postcode: str,
    document_seen: bool,
) -> None:
    """Staff saw an identity document showing this address in the commune: the account's
    address becomes it and its residency is verified (method ``town_hall``)."""
    ensure_owned(account)
    _check_citizen(account)
    if account.is_resident:
        raise Invalid("account", gettext("This person's residency is already verified."))
    if not document_seen:
        raise Invalid(
            "document_seen", gettext("Confirm that you saw an identity document showing this address.")
        )
    street_name, number, code_postcode = await commune_address(
        session, account.tenant_id, street=street, house_number=house_number, postcode=postcode
    )
    await actions.change_address(
        session, account, street=street_name, house_number=number, postcode=code_postcode
    )
    audit.record(
        session,
        tenant_id=account.tenant_id,
        action="residency.town_hall",
        object_type="account",
        object_id=str(account.id),
        changes={"verified_by": current_actor().label, "document_seen": True},
    )
    await actions.verify_residency(session, account, how="town_hall")


def _birth_year(value: int | str | None) -> int:
    text = str(value).strip() if value is not None else ""
    this_year = utcnow().year
    if not text:
        raise Invalid("birth_year", gettext("Write the year of birth."))
    if not text.isdigit() or not OLDEST_BIRTH_YEAR <= int(text) <= this_year:
        raise Invalid(
            "birth_year",
            gettext("Write a year of birth between %(first)s and %(last)s, such as 1948.")
            % {"first": OLDEST_BIRTH_YEAR, "last": this_year},
        )
    return int(text)


async def register_in_person(
    session: AsyncSession,
    commune_id: UUID,
    *,
    display_name: str,
    birth_year: int | str | None,
    street: str,
    house_number: str | None,
    postcode: str,
    language: str,
    email: str | None = None,
) -> Account:
    """Register a person at the town hall (someone without a smartphone): an account with no
    login, resident at once (method ``town_hall``), reachable by post or e-mail."""
    ensure_tenant(commune_id)
    name = " ".join((display_name or "").split())
    if not name:
        raise Invalid("display_name", gettext("Write the person's first and last name."))
    if len(name) > 200:
        raise Invalid("display_name", gettext("A name has at most 200 characters."))
    year = _birth_year(birth_year)
    languages = await session.scalar(select(Commune.languages).where(Commune.id == commune_id))
    if language not in (languages or ()):
        raise Invalid("language", gettext("Choose one of the commune's languages."))
    address = (email or "").strip().lower() or None
    if address is not None:
        local, at, domain = address.rpartition("@")
        if (
            not at
            or not local
            or "." not in domain
            or any(c.isspace() for c in address)
            or len(address) > 254
        ):
            raise Invalid(
                "email", gettext("Write an e-mail address such as name@example.be, or leave it empty.")
            )
    street_name, number, code_postcode = await commune_address(
        session, commune_id, street=street, house_number=house_number, postcode=postcode
    )
    twin = await session.scalar(
        select(Account.id).where(
            func.lower(Account.display_name) == name.lower(),
            Account.birth_year == year,
            Account.kind == AccountKind.CITIZEN,
            Account.disabled.is_(False),
        )
    )
    if twin is not None:
        raise Invalid(
            "display_name",
            gettext(
                "A person with this name and year of birth already has an account: find them in the "
                "list of residents instead of registering them twice."
            ),
        )
    account = await actions.create_account(
        session,
        commune_id,
        display_name=name,
        email=address,
        language=language,
        birth_year=year,
        street=street_name,
        house_number=number,
        postcode=code_postcode,
    )
    audit.record(
        session,
        tenant_id=commune_id,
        action="residency.registered_in_person",
        object_type="account",
        object_id=str(account.id),
        changes={"registered_by": current_actor().label, "email": address is not None},
    )
    await actions.verify_residency(session, account, how="town_hall")
    return account


# --- Finding people ----------------------------------------------------------------------


async def find_residents(
    session: AsyncSession, *, name: str = "", street_id: UUID | None = None, limit: int = SEARCH_LIMIT
) -> tuple[list[Account], bool]:
    """Residents' accounts (citizens, open) whose name contains ``name`` and whose address is
    in the street ``street_id``, by name; and whether there were more than ``limit``."""
    query = select(Account).where(Account.kind == AccountKind.CITIZEN, Account.disabled.is_(False))
    words = name.split()
    for word in words:
        query = query.where(func.lower(Account.display_name).contains(word.lower(), autoescape=True))
    if street_id is not None:
        ids = await territory.resident_account_ids(session, streets=[street_id], verified_only=False)
        if not ids:
            return [], False
        query = query.where(Account.id.in_(ids))
    rows = list(
        await session.scalars(query.order_by(func.lower(Account.display_name), Account.id).limit(limit + 1))
    )
    return rows[:limit], len(rows) > limit
