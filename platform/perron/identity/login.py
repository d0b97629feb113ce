"""Logging in on a commune's site: from a login attempt to an account and a session.

* :func:`begin` records a :class:`LoginAttempt` (state, nonce, PKCE verifier, where to return)
  bound to the browser, and returns the authorization URL.
* :func:`finish` takes the callback's parameters, consumes the attempt (single use), checks the
  issuer, exchanges the code, validates the ID token, and finds or creates the account:
  citizens by their Keycloak subject (or, coming through itsme, by their person key: one
  person, one account per commune); staff only when the commune gave them an account.
* The level of assurance comes from how the person logged in (:func:`assurance_of`), residency
  from itsme's address when its postcode is one of the commune's.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from jwcrypto import jwe, jwk
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from perron import audit
from perron.config import Settings
from perron.db.base import utcnow
from perron.db.repository import ensure_tenant
from perron.identity import actions
from perron.identity.models import Account, AccountKind, Assurance, LoginAttempt, WebSession
from perron.identity.oidc import (
    CITIZENS,
    ITSME,
    ITSME_ACR_ADVANCED,
    STAFF,
    AuthorizationRequest,
    LoginRefused,
    Provider,
    authorization_url,
    client_id_for,
    pkce_pair,
)
from perron.identity.sessions import open_session, token_key
from perron.logging import get_logger
from perron.territory.models import Street

log = get_logger("perron.identity")

ATTEMPT_LIFETIME = dt.timedelta(minutes=15)
FRESH_LOGIN_SECONDS = 60
"""A step-up asks for a login at most this old (``max_age``, with ``prompt=login``). Not 0:
Keycloak's broker refuses itsme's answer when ``auth_time + max_age`` is before its own clock,
in whole seconds, so 0 fails whenever the answer crosses a second boundary on its way."""
METHODS = ("itsme", "email")


def check_national_number(value: str) -> str | None:
    """The 11 digits of a valid Belgian national register number, or None (mod-97 check,
    including people born in 2000 or later)."""
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) != 11:
        return None
    body, check = int(digits[:9]), int(digits[9:])
    if 97 - body % 97 == check or 97 - int("2" + digits[:9]) % 97 == check:
        return digits
    return None


def person_key(settings: Settings, national_number: str) -> str:
    """The keyed HMAC that stands for a national register number: equal for the same person
    in every commune of the deployment, useless to anyone without the key."""
    if settings.nrn_hmac_key is not None:
        key = settings.nrn_hmac_key.get_secret_value().encode()
    else:
        key = hmac.new(settings.secret().encode(), b"perron:nrn-hmac-key", hashlib.sha256).digest()
    return hmac.new(key, b"BE-NRN:" + national_number.encode(), hashlib.sha256).hexdigest()


def _seal_key(settings: Settings) -> jwk.JWK:
    raw = hmac.new(settings.secret().encode(), b"perron:id-token-seal", hashlib.sha256).digest()
    return jwk.JWK(kty="oct", k=base64.urlsafe_b64encode(raw).rstrip(b"=").decode())


def seal_id_token(settings: Settings, raw: str) -> str:
    """The ID token as the session row keeps it (for RP-initiated logout): encrypted, because
    it carries the national number and the address of people who came through itsme."""
    sealed = jwe.JWE(raw.encode(), protected={"alg": "dir", "enc": "A256GCM"})
    sealed.add_recipient(_seal_key(settings))
    return str(sealed.serialize(compact=True))


def open_id_token(settings: Settings, sealed: str) -> str | None:
    """The ID token :func:`seal_id_token` sealed, or None if it cannot be opened (another key)."""
    token = jwe.JWE()
    try:
        token.deserialize(sealed, key=_seal_key(settings))
    except Exception:
        return None
    return bytes(token.payload).decode()


def assurance_of(realm: str, claims: dict[str, Any]) -> Assurance:
    """The level of assurance a login proved.

    Citizens: through itsme, ``acr_advanced`` is high and anything else substantial; e-mail and
    password is low, and only with a verified address. Staff: password and a second factor
    (required by the staff realm) count as substantial."""
    if realm == STAFF:
        return Assurance.SUBSTANTIAL
    if claims.get("perron_idp") == ITSME:
        return (
            Assurance.HIGH if claims.get("perron_itsme_acr") == ITSME_ACR_ADVANCED else Assurance.SUBSTANTIAL
        )
    return Assurance.LOW if claims.get("email_verified") is True else Assurance.NONE


@dataclass(frozen=True, slots=True)
class Begun:
    url: str
    browser_token: str


def safe_next(value: str | None) -> str | None:
    """A path on this site to return to, or None when ``value`` would leave it."""
    if not value:
        return "/"
    if (
        not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(ch) < 32 for ch in value)
        or len(value) > 2000
    ):
        return None
    return value


async def begin(
    session: AsyncSession,
    provider: Provider,
    *,
    tenant_id: UUID,
    slug: str,
    redirect_uri: str,
    level: Assurance,
    next_path: str,
    method: str,
    language: str,
    browser_token: str | None,
    fresh: bool,
) -> Begun:
    """Record a login attempt and return where to send the browser."""
    ensure_tenant(tenant_id)
    metadata = await provider.metadata(fresh=True)
    browser_token = browser_token or secrets.token_urlsafe(24)
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    verifier, challenge = pkce_pair()
    max_age = FRESH_LOGIN_SECONDS if fresh else None
    now = utcnow()
    await session.execute(delete(LoginAttempt).where(LoginAttempt.expires_at < now))
    session.add(
        LoginAttempt(
            tenant_id=tenant_id,
            id=token_key(state),
            browser_key=token_key(browser_token),
            realm=provider.realm,
            nonce=nonce,
            code_verifier=verifier,
            level=int(level),
            max_age=max_age,
            next_path=next_path,
            created_at=now,
            expires_at=now + ATTEMPT_LIFETIME,
        )
    )
    citizens = provider.realm == CITIZENS
    request = AuthorizationRequest(
        redirect_uri=redirect_uri,
        state=state,
        nonce=nonce,
        code_challenge=challenge,
        # Only a high level is asked for by name: any acr_values makes Keycloak skip its
        # single sign-on, and basic is itsme's default anyway.
        acr_values=ITSME_ACR_ADVANCED if citizens and method == ITSME and level >= Assurance.HIGH else None,
        prompt="login" if fresh else None,
        max_age=max_age,
        idp_hint=ITSME if citizens and method == ITSME else None,
        ui_locales=language,
    )
    return Begun(
        authorization_url(metadata["authorization_endpoint"], client_id_for(slug), request), browser_token
    )


@dataclass(frozen=True, slots=True)
class Finished:
    token: str
    next_path: str
    account_id: UUID
    assurance: Assurance
    wanted: Assurance


async def take_attempt(session: AsyncSession, state: str, browser_token: str | None) -> LoginAttempt:
    """The attempt ``state`` names, removed so it cannot serve twice."""
    attempt = await session.scalar(
        select(LoginAttempt).where(LoginAttempt.id == token_key(state)).with_for_update()
    )
    if attempt is None:
        raise LoginRefused("unknown_state", "no login in progress has this state (tampered, replayed or old)")
    await session.delete(attempt)
    await session.flush()
    if attempt.expires_at < utcnow():
        raise LoginRefused("expired_state", "the login took too long")
    if browser_token is None or not hmac.compare_digest(attempt.browser_key, token_key(browser_token)):
        raise LoginRefused("other_browser", "the login was started in another browser")
    return attempt


async def finish(
    session: AsyncSession,
    provider: Provider,
    settings: Settings,
    attempt: LoginAttempt,
    *,
    slug: str,
    code: str,
    issuer_param: str | None,
    redirect_uri: str,
    previous_token: str | None,
) -> Finished:
    """Complete a login; raises :class:`LoginRefused` for anything that does not check out."""
    metadata = await provider.metadata()
    if issuer_param is not None and issuer_param != provider.issuer:
        raise LoginRefused("wrong_issuer", f"the answer comes from {issuer_param!r}")
    if issuer_param is None and metadata.get("authorization_response_iss_parameter_supported"):
        raise LoginRefused("wrong_issuer", "the answer does not say who sent it")
    client_id = client_id_for(slug)
    tokens = await provider.exchange_code(
        code=code, redirect_uri=redirect_uri, client_id=client_id, verifier=attempt.code_verifier
    )
    claims = await provider.validate_id_token(
        tokens["id_token"], client_id=client_id, nonce=attempt.nonce, max_age=attempt.max_age
    )
    if claims.get("perron_idp") == ITSME and isinstance(tokens.get("access_token"), str):
        info = await provider.userinfo(tokens["access_token"], claims["sub"])
        if "perron_nrn" in info:
            claims = claims | {"perron_nrn": info["perron_nrn"]}
    level = assurance_of(provider.realm, claims)
    if level == Assurance.NONE:
        raise LoginRefused("unverified_email", "the e-mail address has not been verified yet")
    if provider.realm == STAFF:
        account = await _staff_account(session, attempt.tenant_id, claims)
    else:
        account = await _citizen_account(session, settings, attempt.tenant_id, claims, level)
    if previous_token:  # a new session id at every login: a planted cookie is worth nothing
        await session.execute(delete(WebSession).where(WebSession.id == token_key(previous_token)))
    auth_time = claims.get("auth_time")
    token = await open_session(
        session,
        account,
        level,
        realm=provider.realm,
        oidc_sid=str(claims.get("sid") or "")[:64] or None,
        id_token=seal_id_token(settings, tokens["id_token"]),
        auth_time=dt.datetime.fromtimestamp(auth_time, dt.UTC)
        if isinstance(auth_time, int | float)
        else None,
    )
    audit.record(
        session,
        tenant_id=attempt.tenant_id,
        action="account.login",
        object_type="account",
        object_id=str(account.id),
        changes={"realm": provider.realm, "assurance": int(level)},
    )
    return Finished(token, attempt.next_path, account.id, level, Assurance(attempt.level))


def _display_name(claims: dict[str, Any]) -> str:
    name = claims.get("name")
    if not name:
        name = " ".join(str(claims.get(key) or "") for key in ("given_name", "family_name")).strip()
    return str(name or claims.get("email") or claims.get("preferred_username") or "?")[:200]


async def _staff_account(session: AsyncSession, tenant_id: UUID, claims: dict[str, Any]) -> Account:
    subject = claims["sub"]
    account = await session.scalar(
        select(Account).where(Account.subject == subject, Account.kind == AccountKind.STAFF)
    )
    if account is None:
        raise LoginRefused("not_staff_here", "this staff identity has no account in this commune")
    if account.disabled:
        raise LoginRefused("account_disabled", "this staff account has been closed")
    account.display_name = _display_name(claims)
    return account


async def _citizen_account(
    session: AsyncSession, settings: Settings, tenant_id: UUID, claims: dict[str, Any], level: Assurance
) -> Account:
    subject = claims["sub"]
    if claims.get("perron_idp") != ITSME:
        # What itsme said (kept by Keycloak from an earlier itsme login) is believed only
        # when this login itself went through itsme.
        claims = {key: value for key, value in claims.items() if not key.startswith("perron_")}
    key = None
    if isinstance(claims.get("perron_nrn"), str):
        number = check_national_number(claims["perron_nrn"])
        if number is None:
            log.warning("login.bad_national_number", subject=subject)
        else:
            key = person_key(settings, number)
    account = await session.scalar(
        select(Account).where(Account.subject == subject, Account.kind == AccountKind.CITIZEN)
    )
    if account is None and key is not None:
        # The same person with a new identity at Keycloak (a new itsme link): one account.
        account = await session.scalar(select(Account).where(Account.person_key == key))
        if account is not None:
            account.subject = subject
    address = claims.get("perron_address") if isinstance(claims.get("perron_address"), dict) else None
    street, number_part = _split_street(str(address.get("street_address") or "")) if address else (None, None)
    postcode = str(address.get("postal_code") or "").strip() or None if address else None
    if postcode is not None and not (len(postcode) == 4 and postcode.isdigit()):
        postcode = None
    birth_year = _birth_year(claims.get("perron_birthdate"))
    if account is None and key is not None and birth_year is not None and postcode is not None:
        account = await _registered_on_paper(session, _display_name(claims), birth_year, postcode)
        if account is not None:
            account.subject = subject
            audit.record(
                session,
                tenant_id=tenant_id,
                action="account.linked",
                object_type="account",
                object_id=str(account.id),
                changes={"how": "itsme matched the town hall's registration (name, birth year, postcode)"},
            )
    if account is None:
        language = str(claims.get("locale") or "fr")[:2]
        account = await actions.create_account(
            session,
            tenant_id,
            display_name=_display_name(claims),
            subject=subject,
            email=claims.get("email") if claims.get("email_verified") else None,
            language=language if language in ("fr", "nl", "de", "en") else "fr",
            assurance=level,
            birth_year=birth_year,
            street=street,
            house_number=number_part,
            postcode=postcode,
        )
    else:
        if account.disabled:
            raise LoginRefused("account_disabled", "this account has been closed")
        account.display_name = _display_name(claims)
        if claims.get("email_verified") and claims.get("email"):
            account.email = str(claims["email"]).lower()[:254]
        if address is not None and postcode is not None:
            await actions.change_address(
                session, account, street=street, house_number=number_part, postcode=postcode
            )
    if key is not None and account.person_key is None:
        account.person_key = key
    if address is not None and postcode is not None and await _postcode_is_local(session, postcode):
        await actions.verify_residency(session, account, how="itsme")
    return account


def _name_key(name: str) -> frozenset[str]:
    """A name as a set of words without case or accents ("PEETERS Ann" = "Ann Peeters")."""
    plain = "".join(
        ch for ch in unicodedata.normalize("NFKD", name.casefold()) if not unicodedata.combining(ch)
    )
    return frozenset(plain.replace("-", " ").split())


async def _registered_on_paper(
    session: AsyncSession, name: str, birth_year: int, postcode: str
) -> Account | None:
    """The account the town hall registered for this person (no login yet), when exactly one
    has their name, birth year and postcode: their first itsme login takes it over instead of
    making a second account."""
    candidates = await session.scalars(
        select(Account).where(
            Account.subject.is_(None),
            Account.kind == AccountKind.CITIZEN,
            Account.birth_year == birth_year,
            Account.postcode == postcode,
            Account.disabled.is_(False),
        )
    )
    wanted = _name_key(name)
    matching = [account for account in candidates if _name_key(account.display_name) == wanted]
    return matching[0] if len(matching) == 1 else None


async def _postcode_is_local(session: AsyncSession, postcode: str) -> bool:
    return await session.scalar(select(Street.id).where(Street.postcode == postcode).limit(1)) is not None


def _split_street(value: str) -> tuple[str | None, str | None]:
    """ "Rue de la Station 12" → ("Rue de la Station", "12") (itsme gives one line)."""
    text = " ".join(value.split())
    if not text:
        return None, None
    head, _, tail = text.rpartition(" ")
    if head and tail[:1].isdigit():
        return head[:200], tail[:20]
    return text[:200], None


def _birth_year(value: object) -> int | None:
    if isinstance(value, str) and len(value) >= 4 and value[:4].isdigit():
        return int(value[:4])
    return None
