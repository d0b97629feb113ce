"""Suspend, resume and archive a commune from the console; operators' and intercommunales'
pages; who may do what."""

from __future__ import annotations

from sqlalchemy import select

from perron.audit import AuditEntry
from perron.db.scope import platform_scope
from perron.identity.models import PlatformRole
from perron.testing.harness import Harness
from tests.console.conftest import Bodies, console, submit, text


async def test_suspend_resume_and_archive_a_commune(perron: Harness, bodies: Bodies) -> None:
    client = console(perron, bodies.bep_admin)
    page = "/communes/ciney"
    suspended = await submit(
        perron, client, page, "/communes/ciney/lifecycle/suspend", {"notice.fr": "Le site revient lundi."}
    )
    assert suspended.status_code == 303
    site = perron.client("ciney.test")
    closed = await site.get("/")
    assert closed.status_code == 503 and "Le site revient lundi." in closed.text
    assert (await site.get("/branding.css")).status_code == 200  # its colours still load
    assert "suspended" in text(await client.get(page + "?done=suspend"))
    assert (await submit(perron, client, page, "/communes/ciney/lifecycle/resume", {})).status_code == 303
    assert (await site.get("/")).status_code == 200
    # Archiving asks for the commune's name, exactly.
    wrong = await submit(perron, client, page, "/communes/ciney/lifecycle/archive", {"confirm": "Arlon"})
    assert wrong.status_code == 400 and "Type the commune's name exactly" in text(wrong)
    assert (await site.get("/")).status_code == 200
    assert (
        await submit(perron, client, page, "/communes/ciney/lifecycle/archive", {"confirm": "ciney"})
    ).status_code == 303
    assert (await site.get("/")).status_code == 410
    again = await submit(perron, client, page, "/communes/ciney/lifecycle/resume", {})
    assert again.status_code == 409
    async with perron.transaction(bodies.ciney) as session:
        actions = [
            row.action for row in await session.scalars(select(AuditEntry).order_by(AuditEntry.occurred_at))
        ]
        who = {
            row.actor_label
            for row in await session.scalars(select(AuditEntry).where(AuditEntry.action.like("commune.%")))
        }
    assert actions[-3:] == ["commune.suspend", "commune.activate", "commune.archive"]
    assert any("Béatrice BEP" in label for label in who)
    # Another intercommunale's administrator cannot touch it.
    other = console(perron, bodies.idelux_admin)
    assert (
        await submit(perron, other, "/communes/arlon", "/communes/ciney/lifecycle/resume", {})
    ).status_code == 404


async def test_only_operators_manage_operators_intercommunales_and_failed_jobs(
    perron: Harness, bodies: Bodies
) -> None:
    admin = console(perron, bodies.bep_admin)
    for path in ("/operators", "/jobs"):
        assert (await admin.get(path)).status_code == 403, path
    created = await submit(
        perron, admin, "/intercommunales", "/intercommunales", {"slug": "ipalle", "name.fr": "Ipalle"}
    )
    assert created.status_code == 403
    operator = console(perron, bodies.operator)
    created = await submit(
        perron, operator, "/intercommunales", "/intercommunales", {"slug": "ipalle", "name.fr": "Ipalle"}
    )
    assert (
        created.status_code == 303 and created.headers["location"] == "/intercommunales/ipalle?done=created"
    )
    duplicate = await submit(
        perron, operator, "/intercommunales", "/intercommunales", {"slug": "ipalle", "name.fr": "Ipalle"}
    )
    assert duplicate.status_code == 400 and "already has the slug" in text(duplicate)
    granted = await submit(
        perron,
        operator,
        "/intercommunales/ipalle",
        "/intercommunales/ipalle/admins",
        {"display_name": "Paul Ipalle", "email": "Paul@Ipalle.example"},
    )
    assert granted.status_code == 303
    assert "paul@ipalle.example" in text(await operator.get("/intercommunales/ipalle"))
    bad = await submit(
        perron,
        operator,
        "/intercommunales/ipalle",
        "/intercommunales/ipalle/admins",
        {"display_name": "X", "email": "nope"},
    )
    assert bad.status_code == 400 and "e-mail" in text(bad)
    # Removing an administrator takes their access away at once.
    with platform_scope("test: look"):
        async with perron.database.session() as session:
            role = await session.scalar(
                select(PlatformRole).where(PlatformRole.email == bodies.bep_admin.email)
            )
    assert role is not None
    removed = await submit(
        perron, operator, "/intercommunales/bep", f"/intercommunales/bep/admins/{role.id}/remove", {}
    )
    assert removed.status_code == 303
    assert (await admin.get("/communes")).status_code == 401
    # The last operator stays.
    with platform_scope("test: look"):
        async with perron.database.session() as session:
            mine = await session.scalar(
                select(PlatformRole).where(PlatformRole.email == bodies.operator.email)
            )
    assert mine is not None
    last = await submit(perron, operator, "/operators", f"/operators/{mine.id}/remove", {})
    assert last.status_code == 400 and "last operator" in text(last)


async def test_anonymous_visitors_see_the_status_page_and_nothing_else(
    perron: Harness, bodies: Bodies
) -> None:
    anonymous = console(perron)
    home = await anonymous.get("/")
    assert home.status_code == 200 and "Platform status" in text(home)
    assert "Ciney" not in text(home) and "perron_csrf" not in home.headers.get("set-cookie", "")
    for path in ("/communes", "/communes/ciney", "/intercommunales", "/onboardings", "/imports/new", "/jobs"):
        assert (await anonymous.get(path)).status_code == 401, path
    forged = perron.console_client()
    forged.cookies.set("perron_console", "not-a-session", domain="console.test")
    assert (await forged.get("/communes")).status_code == 401
    # A commune's staff session is not a console session.
    staff = await perron.staff(bodies.ciney)
    crossing = perron.console_client()
    crossing.cookies.set("perron_console", staff.token, domain="console.test")
    assert (await crossing.get("/communes")).status_code == 401


async def test_billing_pages_do_not_exist_where_the_deployment_does_not_bill(
    perron: Harness, bodies: Bodies
) -> None:
    client = console(perron, bodies.bep_admin)
    assert (await client.get("/billing/intercommunale/bep")).status_code == 404
    assert "/billing/" not in (await client.get("/communes/ciney")).text
