"""What Perron holds about a person in one commune: the download (GDPR article 15/20) and
the deletion of their account (article 17).

* :func:`collect_personal_data` gathers the platform's data (the account, its sessions,
  residency codes, notification choices, inbox, e-mails and the days they used the site,
  for the adoption figures) and each enabled module's
  contribution. **Extension point:** a module contributes through its manifest's
  ``personal_data`` attribute, an ``async`` callable ``(HookContext, account_id) -> dict``
  (see :func:`module_exporter`); until the manifest declares that field, only modules that
  set the attribute take part. Nothing about other people is exported: no other account's
  id, nor who sent a notification.
* :func:`delete_own_account` removes the account in this commune (sessions end, modules
  erase what they hold through ``account_deleted``); :func:`queue_login_deletion` then
  queues the deletion of the person's Keycloak login, only when no other commune still has
  an account with it (a count across communes, in the platform scope). The job counts again
  before deleting: a person who joined another commune meanwhile keeps their login.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from perron.adoption.recording import activity_of
from perron.db.base import utcnow
from perron.db.engine import Database
from perron.db.repository import ensure_owned
from perron.db.scope import platform_scope
from perron.errors import Invalid
from perron.i18n import gettext
from perron.identity import actions
from perron.identity.models import Account, AccountKind, Assurance, WebSession
from perron.identity.residency import code_state, codes_of
from perron.jobs import JobContext, enqueue, job
from perron.logging import get_logger
from perron.mail.models import OutgoingEmail
from perron.modules.manifest import HookContext, ModuleManifest
from perron.modules.registry import Registry
from perron.notifications.models import Delivery, Notification, Preference
from perron.tenancy.models import Commune

log = get_logger("perron.identity.personal_data")

FORMAT = "perron-personal-data/1"
CITIZENS_REALM = "citizens"
FORGET_LOGIN_JOB = "perron.identity.forget_citizen_login"

PersonalDataExporter = Callable[[HookContext, UUID], Awaitable[Mapping[str, Any]]]


def _time(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def module_exporter(manifest: ModuleManifest) -> PersonalDataExporter | None:
    """A module's contribution to the download: its manifest's ``personal_data`` callable."""
    exporter = getattr(manifest, "personal_data", None)
    return cast(PersonalDataExporter, exporter) if callable(exporter) else None


async def collect_personal_data(
    session: AsyncSession, account: Account, registry: Registry
) -> dict[str, Any]:
    """Everything Perron holds about ``account`` in its commune, as JSON-ready data."""
    from perron.modules.activation import _hook_context, enabled_modules

    ensure_owned(account)
    commune = await session.get(Commune, account.tenant_id)
    data: dict[str, Any] = {
        "format": FORMAT,
        "exported_at": utcnow().isoformat(),
        "commune": {"slug": commune.slug, "names": dict(commune.names)} if commune else None,
        "account": _account(account),
        "sessions": await _sessions(session, account),
        "residency_codes": [
            {
                "issued_at": _time(code.created_at),
                "issued_by": code.created_by,
                "address": {
                    "street": code.street,
                    "house_number": code.house_number,
                    "postcode": code.postcode,
                },
                "expires_at": _time(code.expires_at),
                "used_at": _time(code.used_at),
                "wrong_tries": code.attempts,
                "state": code_state(code).value,
            }
            for code in await codes_of(session, account)
        ],
        "notification_preferences": {
            module: frequency.value
            for module, frequency in (
                await session.execute(
                    select(Preference.module, Preference.email).where(Preference.account_id == account.id)
                )
            ).tuples()
        },
        "notifications": await _notifications(session, account),
        "emails": await _emails(session, account),
        "activity_days": await activity_of(session, account.id),
        "modules": {},
    }
    for name in sorted(await enabled_modules(session, account.tenant_id)):
        manifest = registry.get(name)
        exporter = module_exporter(manifest) if manifest is not None else None
        if exporter is None:
            continue
        try:
            contribution = await exporter(await _hook_context(session, account.tenant_id, name), account.id)
            data["modules"][name] = dict(contribution)
        except Exception:
            log.exception("personal_data.module_failed", module=name)
            data["modules"][name] = {"error": "this module could not export its data; please ask the commune"}
    return data


def _account(account: Account) -> dict[str, Any]:
    return {
        "id": str(account.id),
        "kind": account.kind.value,
        "name": account.display_name,
        "email": account.email,
        "language": account.language,
        "roles": list(account.roles or []),
        "birth_year": account.birth_year,
        "address": {
            "street": account.street,
            "house_number": account.house_number,
            "postcode": account.postcode,
        },
        "residency_verified_at": _time(account.residency_verified_at),
        "residency_method": account.residency_method,
        "highest_login_level": Assurance(account.assurance).name.lower(),
        "login_subject": account.subject,
        "national_number_fingerprint": account.person_key,
        "created_at": _time(account.created_at),
        "last_login_at": _time(account.last_login_at),
    }


async def _sessions(session: AsyncSession, account: Account) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(WebSession).where(WebSession.account_id == account.id).order_by(WebSession.created_at)
    )
    return [
        {
            "started_at": _time(row.created_at),
            "expires_at": _time(row.expires_at),
            "login_level": Assurance(row.assurance).name.lower(),
            "realm": row.realm,
        }
        for row in rows
    ]


async def _notifications(session: AsyncSession, account: Account) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(Delivery, Notification)
        .join(
            Notification,
            (Notification.tenant_id == Delivery.tenant_id) & (Notification.id == Delivery.notification_id),
        )
        .where(Delivery.account_id == account.id)
        .order_by(Notification.created_at, Delivery.channel)
    )
    return [
        {
            "from": notification.module,
            "title": dict(notification.title),
            "body": dict(notification.body),
            "link": notification.link,
            "sent_at": _time(notification.created_at),
            "channel": delivery.channel.value,
            "status": delivery.status.value,
            "read_at": _time(delivery.read_at),
        }
        for delivery, notification in rows.tuples()
    ]


async def _emails(session: AsyncSession, account: Account) -> list[dict[str, Any]]:
    rows = await session.scalars(
        select(OutgoingEmail).where(OutgoingEmail.account_id == account.id).order_by(OutgoingEmail.created_at)
    )
    return [
        {
            "to": row.to_address,
            "subject": row.subject,
            "text": row.text_body,
            "queued_at": _time(row.created_at),
            "sent_at": _time(row.sent_at),
            "status": row.status.value,
        }
        for row in rows
    ]


# --- Deletion ------------------------------------------------------------------------------


async def delete_own_account(session: AsyncSession, account: Account) -> str | None:
    """A person deletes their account in this commune. Returns the login (Keycloak subject)
    that may have to be forgotten, for :func:`queue_login_deletion` after the commit."""
    ensure_owned(account)
    if account.kind is not AccountKind.CITIZEN:
        raise Invalid(
            "account", gettext("A staff account is closed by an administrator of the commune, not from here.")
        )
    subject = account.subject
    await actions.delete_account(session, account)
    return subject


async def accounts_with_login(session: AsyncSession, subject: str) -> int:
    """How many communes still have a resident's account with this login (platform scope;
    a count, nothing else)."""
    count = await session.scalar(
        select(func.count())
        .select_from(Account)
        .where(Account.subject == subject, Account.kind == AccountKind.CITIZEN)
    )
    return int(count or 0)


async def queue_login_deletion(database: Database, subject: str) -> bool:
    """After an account was deleted: queue the deletion of its citizen login at Keycloak if no
    commune holds an account with it any more. Returns whether it was queued."""
    with platform_scope("account deleted: does another commune still hold this citizen login?"):
        async with database.transaction() as session:
            if await accounts_with_login(session, subject):
                log.info("identity.login_kept", reason="another commune has an account with it")
                return False
            enqueue(session, FORGET_LOGIN_JOB, realm=CITIZENS_REALM, subject=subject)
    return True


@job(FORGET_LOGIN_JOB, per_tenant=False, max_retries=12, min_backoff_ms=5_000)
async def forget_citizen_login(ctx: JobContext, *, realm: str, subject: str) -> str:
    """Delete a citizen's Keycloak login once no commune has an account with it."""
    from perron.identity.jobs import login_settings

    settings = login_settings(FORGET_LOGIN_JOB)
    if settings is None:
        return "skipped: login is switched off"
    if await accounts_with_login(ctx.session, subject):
        return "kept: a commune has an account with this login again"
    from perron.identity import keycloak

    deleted = await keycloak.delete_user(settings, realm, subject)
    return "deleted" if deleted else "already gone"
