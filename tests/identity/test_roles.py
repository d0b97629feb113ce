"""Roles: what a commune can give (the platform's and its modules'), to whom, audited, and
never leaving a commune without an administrator; staff invited and removed; roles above
communes (operators, intercommunale administrators) changed only in the platform scope.

Keycloak is not running here (login is switched off): its jobs are queued and do nothing
but say so; what they do at Keycloak is tested with the login itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from perron.audit import Actor, ActorKind, AuditEntry, PlatformAuditEntry, acting_as
from perron.db.scope import CrossTenantAccess, platform_scope, tenant_scope
from perron.errors import Conflict, Invalid
from perron.i18n import using_language
from perron.identity import roles
from perron.identity.models import Account, AccountKind, PlatformRole, WebSession
from perron.jobs.status import JobRun
from perron.tenancy import actions as tenancy
from perron.testing.harness import Harness, Person, Tenant


@asynccontextmanager
async def as_person(perron: Harness, tenant: Tenant, person: Person) -> AsyncIterator[AsyncSession]:
    """A transaction in the commune's scope, made by ``person`` (as their pages do)."""
    actor = Actor(ActorKind.PERSON, person.account.display_name, person.id)
    with tenant_scope(tenant.id), acting_as(actor), using_language("en"):
        async with perron.database.transaction() as session:
            yield session


async def load(perron: Harness, tenant: Tenant, account_id: UUID) -> Account:
    async with perron.transaction(tenant) as session:
        found = await session.scalar(select(Account).where(Account.id == account_id))
    assert found is not None
    return found


async def change(
    perron: Harness, tenant: Tenant, person: Person | Account, wanted: list[str], **options: Any
) -> bool:
    account_id = person.id
    with using_language("en"):
        async with perron.transaction(tenant) as session:
            account = await session.scalar(select(Account).where(Account.id == account_id))
            assert account is not None
            return await roles.set_roles(session, account, wanted, **options)


async def role_audit(perron: Harness, tenant: Tenant, account_id: UUID) -> list[AuditEntry]:
    async with perron.transaction(tenant) as session:
        rows = await session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "account.roles", AuditEntry.object_id == str(account_id))
            .order_by(AuditEntry.occurred_at)
        )
        return list(rows)


async def test_the_catalogue_lists_the_platforms_roles_and_the_enabled_modules(perron: Harness) -> None:
    assert roles.module_roles()["news.editor"][0] == "news"
    names = [info.name for info in roles.role_catalogue(set())]
    assert names == ["admin", "staff", "moderator", "territory.editor"]
    with_news = {info.name: info for info in roles.role_catalogue({"news"})}
    assert with_news["news.editor"].module == "news" and not with_news["news.editor"].staff_only
    assert with_news["admin"].staff_only and not with_news["moderator"].staff_only


async def test_unknown_roles_are_refused_by_name_and_nothing_changes(
    perron: Harness, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    clerk = await perron.staff(alpha, roles=["staff"])
    with pytest.raises(Invalid) as refused:
        await change(perron, alpha, clerk, ["staff", "mayor"])
    assert refused.value.field == "roles" and "“mayor”" in refused.value.reason
    # A module's role needs the module switched on in the commune.
    with pytest.raises(Invalid) as switched_off:
        await change(perron, alpha, clerk, ["news.editor"])
    assert "switched off" in switched_off.value.reason
    assert (await load(perron, alpha, clerk.id)).roles == ["staff"]
    assert await role_audit(perron, alpha, clerk.id) == []

    await perron.enable(alpha, "news")
    assert await change(perron, alpha, clerk, ["news.editor", "staff", " staff "])
    assert (await load(perron, alpha, clerk.id)).roles == ["news.editor", "staff"]
    assert not await change(perron, alpha, clerk, ["staff", "news.editor"])  # the same: no change, no entry
    assert len(await role_audit(perron, alpha, clerk.id)) == 1


async def test_citizens_hold_module_and_moderator_roles_but_never_staff_ones(
    perron: Harness, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    await perron.enable(alpha, "news")
    merchant = await perron.citizen(alpha)
    for staff_role in ("admin", "staff", "territory.editor"):
        with pytest.raises(Invalid) as refused:
            await change(perron, alpha, merchant, [staff_role])
        assert "for staff accounts only" in refused.value.reason
    assert await change(perron, alpha, merchant, ["moderator", "news.editor"])
    assert (await load(perron, alpha, merchant.id)).roles == ["moderator", "news.editor"]


async def test_role_changes_are_audited_with_before_after_and_the_reason(
    perron: Harness, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    admin = await perron.staff(alpha, roles=["admin"], name="Ada Admin")
    clerk = await perron.staff(alpha, roles=["staff"])
    async with as_person(perron, alpha, admin) as session:
        account = await session.scalar(select(Account).where(Account.id == clerk.id))
        assert account is not None
        assert await roles.set_roles(session, account, ["moderator", "staff"], reason="helps with the forum")
    (entry,) = await role_audit(perron, alpha, clerk.id)
    assert entry.changes == {"roles": [["staff"], ["moderator", "staff"]], "reason": "helps with the forum"}
    assert entry.actor_label == "Ada Admin" and entry.actor_person_id == admin.id


async def test_the_last_administrator_keeps_the_role(
    perron: Harness, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, bravo = two_tenants
    first = await perron.staff(alpha, roles=["admin"], name="First Admin")
    await perron.staff(bravo, roles=["admin"])  # another commune's admin does not count
    with pytest.raises(Invalid) as refused:
        await change(perron, alpha, first, ["staff"])
    assert "last administrator" in refused.value.reason
    assert (await load(perron, alpha, first.id)).roles == ["admin"]

    second = await perron.staff(alpha, roles=["admin"], name="Second Admin")
    assert await change(perron, alpha, first, ["staff"])
    with pytest.raises(Invalid):
        await change(perron, alpha, second, [])
    # A closed account's admin role does not count either.
    async with perron.transaction(alpha) as session:
        account = await session.scalar(select(Account).where(Account.id == first.id))
        assert account is not None
        account.roles, account.disabled = ["admin"], True
    with pytest.raises(Invalid):
        await change(perron, alpha, second, ["staff"])


async def test_an_invitation_makes_a_waiting_staff_account_and_queues_its_login(
    perron: Harness, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, bravo = two_tenants
    async with perron.transaction(alpha) as session:
        invited = await roles.invite_staff(
            session, alpha.id, " Lea.Lambert@Alpha.be ", "Léa Lambert", ["staff"], "nl"
        )
    assert invited.kind is AccountKind.STAFF and invited.subject is None
    assert invited.email == "lea.lambert@alpha.be" and invited.roles == ["staff"] and invited.language == "nl"
    await perron.run_jobs()
    async with perron.transaction(alpha) as session:
        run = await session.scalar(select(JobRun).where(JobRun.job == roles.CREATE_STAFF_LOGIN_JOB))
    # Login is switched off here: the job ran, did nothing, and left the account waiting.
    assert run is not None and run.status.value == "done"
    assert (await load(perron, alpha, invited.id)).subject is None

    with using_language("en"):
        async with perron.transaction(alpha) as session:
            with pytest.raises(Invalid) as twice:
                await roles.invite_staff(session, alpha.id, "lea.lambert@alpha.be", "Léa", ["staff"], "fr")
            assert twice.value.field == "email" and "already on the commune's staff" in twice.value.reason
            for email, name, wanted, language, field in [
                ("not-an-address", "Léa", ["staff"], "fr", "email"),
                ("x@alpha.be", " ", ["staff"], "fr", "display_name"),
                ("x@alpha.be", "Léa", [], "fr", "roles"),
                ("x@alpha.be", "Léa", ["chief"], "fr", "roles"),
                ("x@alpha.be", "Léa", ["staff"], "xx", "language"),
            ]:
                with pytest.raises(Invalid) as refused:
                    await roles.invite_staff(session, alpha.id, email, name, wanted, language)
                assert refused.value.field == field
    # The same address may work for another commune too.
    async with perron.transaction(bravo) as session:
        await roles.invite_staff(session, bravo.id, "lea.lambert@alpha.be", "Léa Lambert", ["admin"], "fr")


async def test_removing_a_staff_member_closes_their_access_at_once(
    perron: Harness, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    admin = await perron.staff(alpha, roles=["admin"], name="Ada Admin")
    clerk = await perron.staff(alpha, roles=["staff"], name="Claire Clerk")
    async with perron.transaction(alpha) as session:
        account = await session.scalar(select(Account).where(Account.id == clerk.id))
        assert account is not None
        account.subject = "kc-claire"
    client = perron.client(alpha, person=clerk)
    assert (await client.get("/admin/residents")).status_code == 200

    async with as_person(perron, alpha, admin) as session:
        account = await session.scalar(select(Account).where(Account.id == clerk.id))
        assert account is not None
        await roles.remove_staff(session, account)
    closed = await load(perron, alpha, clerk.id)
    assert closed.disabled and closed.roles == []
    async with perron.transaction(alpha) as session:
        assert (
            await session.scalars(select(WebSession).where(WebSession.account_id == clerk.id))
        ).all() == []
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "staff.remove"))
        queued = await session.scalar(select(JobRun).where(JobRun.job == roles.END_LOGIN_SESSIONS_JOB))
    assert entry is not None and entry.actor_label == "Ada Admin"
    assert entry.changes == {"roles": [["staff"], []], "disabled": [False, True]}
    assert queued is not None  # Keycloak's sessions are ended by a job
    assert (await client.get("/admin/residents")).status_code == 401


async def test_nobody_removes_themselves_nor_the_last_administrator(
    perron: Harness, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    admin = await perron.staff(alpha, roles=["admin"], name="Ada Admin")
    other = await perron.staff(alpha, roles=["staff"], name="Otto Other")
    for actor, message in [(admin, "cannot remove yourself"), (other, "last administrator")]:
        with pytest.raises(Invalid) as refused:
            async with as_person(perron, alpha, actor) as session:
                account = await session.scalar(select(Account).where(Account.id == admin.id))
                assert account is not None
                await roles.remove_staff(session, account)
        assert message in refused.value.reason
    assert not (await load(perron, alpha, admin.id)).disabled


async def test_platform_roles_are_changed_in_the_platform_scope_and_audited(
    perron: Harness, two_tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, _ = two_tenants
    async with perron.transaction(alpha) as session:
        with pytest.raises(CrossTenantAccess):
            await roles.grant_operator(session, "ops@perron.be", "Olivia Ops")

    with platform_scope("test: platform roles"):
        async with perron.database.transaction() as session:
            region = await tenancy.create_intercommunale(session, slug="region", names={"fr": "Région"})
            operator = await roles.grant_operator(session, "Ops@Perron.be", "Olivia Ops")
            regional = await roles.grant_intercommunale_admin(
                session, region.id, "ian@region.be", "Ian Inter"
            )
        assert operator.email == "ops@perron.be" and regional.intercommunale_id == region.id
        async with perron.database.transaction() as session:
            with pytest.raises(Conflict):
                await roles.grant_operator(session, "ops@perron.be", "Olivia Ops")
        async with perron.database.transaction() as session:
            with pytest.raises(Conflict) as last:
                await roles.revoke_platform_role(session, operator.id)
            assert "last operator" in last.value.message
        async with perron.database.transaction() as session:
            await roles.revoke_platform_role(session, regional.id)
        async with perron.database.session() as session:
            held = [(row.role, row.email) for row in await roles.platform_roles(session)]
            actions = list(
                await session.scalars(
                    select(PlatformAuditEntry.action)
                    .where(PlatformAuditEntry.object_type == "platform_role")
                    .order_by(PlatformAuditEntry.occurred_at)
                )
            )
            left = (await session.scalars(select(PlatformRole))).all()
    assert held == [("operator", "ops@perron.be")] and len(left) == 1
    assert actions == ["platform_role.grant", "platform_role.grant", "platform_role.revoke"]
