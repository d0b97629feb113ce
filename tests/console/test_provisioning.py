"""The provisioning job under faults: a service that cannot be reached makes it wait and retry
(and the console says why); a run killed halfway is completed by running it again, with
nothing done twice; a request that became impossible fails with its reason."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from perron.audit import AuditEntry
from perron.console import provisioning
from perron.console.models import Onboarding, OnboardingStatus
from perron.console.onboarding import PROVISION_JOB
from perron.db.scope import platform_scope
from perron.identity.keycloak import KeycloakUnavailable
from perron.identity.models import Account
from perron.jobs.registry import JobContext
from perron.jobs.status import PlatformJobRun
from perron.tenancy.models import Branding, Commune, CommuneStatus, Domain, ModuleActivation
from perron.testing.harness import Harness
from tests.console.conftest import Bodies, console, submit, text
from tests.console.test_wizard import fill_wizard, start

pytestmark = pytest.mark.slow


async def launched(perron: Harness, bodies: Bodies) -> tuple[Any, str]:
    client = console(perron, bodies.bep_admin)
    draft = await start(perron, client)
    await fill_wizard(perron, client, draft)
    response = await submit(
        perron, client, f"/onboardings/{draft}/step/review", f"/onboardings/{draft}/launch", {}
    )
    assert response.status_code == 303
    return client, draft


async def counts(perron: Harness) -> dict[str, int]:
    """How many of each thing the provisioning makes exist for the commune ``gesves``."""
    with platform_scope("test: count"):
        async with perron.database.session() as session:
            commune = await session.scalar(select(Commune).where(Commune.slug == "gesves"))
            if commune is None:
                return {}
            found = {"communes": 1}
            for name, model, column in (
                ("domains", Domain, Domain.commune_id),
                ("brandings", Branding, Branding.tenant_id),
                ("modules", ModuleActivation, ModuleActivation.tenant_id),
                ("accounts", Account, Account.tenant_id),
            ):
                found[name] = await session.scalar(
                    select(func.count()).select_from(model).where(column == commune.id)
                )
            found["created"] = await session.scalar(
                select(func.count()).where(
                    AuditEntry.tenant_id == commune.id, AuditEntry.action == "commune.create"
                )
            )
            found["active"] = int(commune.status is CommuneStatus.ACTIVE)
            return found


DONE = {"communes": 1, "domains": 2, "brandings": 1, "modules": 1, "accounts": 1, "created": 1, "active": 1}


async def test_keycloak_unreachable_makes_the_job_wait_and_the_console_says_so(
    perron: Harness, bodies: Bodies, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = provisioning._ACTIONS["login"]

    async def keycloak_down(run: Any) -> None:
        calls.append("login")
        if len(calls) == 1:  # one failure: the retry comes 1 to 2 s later
            raise KeycloakUnavailable("Keycloak cannot be reached (connection refused)")
        await real(run)

    monkeypatch.setitem(provisioning._ACTIONS, "login", keycloak_down)
    client, draft = await launched(perron, bodies)
    await perron.settle()
    seen = ""
    for _ in range(100):  # the first attempt fails within moments; look while it waits
        page = await client.get(f"/onboardings/{draft}/progress")
        seen = text(page)
        if "cannot be reached" in seen:
            break
        await __import__("asyncio").sleep(0.05)
    assert "The login service (Keycloak) cannot be reached" in seen, seen
    assert "waiting to try again" in seen and "Colours and logo — done" in seen
    await perron.run_jobs()
    assert len(calls) == 2
    assert await counts(perron) == DONE
    assert "The commune is on board" in text(await client.get(f"/onboardings/{draft}"))


async def test_a_run_killed_halfway_is_completed_by_running_it_again_with_nothing_twice(
    perron: Harness, bodies: Bodies
) -> None:
    # The request is made as the wizard makes it, then run by hand until the process "dies"
    # in the middle of inviting the administrators (what was reported done is committed).
    with platform_scope("test: an onboarding"):
        async with perron.database.transaction() as session:
            onboarding = Onboarding(
                status=OnboardingStatus.QUEUED,
                step=6,
                created_by="test",
                spec={
                    "intercommunale": "bep",
                    "slug": "gesves",
                    "names": {"fr": "Gesves"},
                    "languages": ["fr"],
                    "nis_code": "92054",
                    "domains": ["gesves.test", "www.gesves.test"],
                    "branding": {"palette": {}, "font": "system", "tagline": {}},
                    "modules": {"news": {}},
                    "admins": [{"email": "g@gesves.test", "name": "Gaëlle Gesves", "language": "fr"}],
                    "demo": True,
                },
            )
            session.add(onboarding)
        onboarding_id = onboarding.id

        class Died(Exception):
            pass

        async def die(run: Any) -> None:
            raise Died("the worker's process was killed")

        real = provisioning._ACTIONS["admins"]
        provisioning._ACTIONS["admins"] = die
        try:
            async with perron.database.session() as session:

                async def report(done: int, total: int | None, message: str) -> None:
                    await session.commit()

                context = JobContext(None, session, "killed", 1, None, report)
                with pytest.raises(Died):
                    await provisioning.provision_commune(context, onboarding_id=str(onboarding_id))
                await session.rollback()
        finally:
            provisioning._ACTIONS["admins"] = real
    half = await counts(perron)
    assert half == {
        "communes": 1,
        "domains": 2,
        "brandings": 1,
        "modules": 1,
        "accounts": 0,
        "created": 1,
        "active": 0,
    }

    # The console offers to run it again (the onboarding is its operator's).
    client = console(perron, bodies.operator)
    again = await submit(perron, client, "/onboardings", f"/onboardings/{onboarding_id}/retry", {})
    assert again.status_code == 303
    await perron.run_jobs()
    assert await counts(perron) == DONE
    with platform_scope("test: look"):
        async with perron.database.session() as session:
            item = await session.get(Onboarding, onboarding_id)
            assert item is not None and item.status is OnboardingStatus.DONE
    # Running a finished onboarding again is refused, and changes nothing.
    refused = await submit(perron, client, "/onboardings", f"/onboardings/{onboarding_id}/retry", {})
    assert refused.status_code == 409 and "already on board" in text(refused)
    await perron.run_jobs()
    assert await counts(perron) == DONE
    # The news module's demo content was added once, not once per run.
    with platform_scope("test: look"):
        async with perron.database.session() as session:
            from perron_news.models import Article

            commune_id = await session.scalar(select(Commune.id).where(Commune.slug == "gesves"))
            first = await session.scalar(
                select(func.count()).select_from(Article).where(Article.tenant_id == commune_id)
            )
    assert first and first > 0


async def test_an_impossible_request_fails_with_its_reason_and_can_be_run_again_once_mended(
    perron: Harness, bodies: Bodies, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, draft = await launched(perron, bodies)
    await perron.run_jobs()
    # A second onboarding written straight into the database with the same NIS code (as if two
    # consoles had raced): its job refuses it without retrying.
    with platform_scope("test: a conflicting onboarding"):
        async with perron.database.transaction() as session:
            first = await session.get(Onboarding, uuid.UUID(draft))
            assert first is not None
            spec = dict(first.spec) | {"slug": "gesves-bis", "domains": ["bis.gesves.test"]}
            clash = Onboarding(
                intercommunale_id=first.intercommunale_id,
                status=OnboardingStatus.QUEUED,
                spec=spec,
                created_by="t",
            )
            session.add(clash)
            await session.flush()
            from perron.jobs import enqueue

            clash.job_id = enqueue(session, PROVISION_JOB, tenant_id=None, onboarding_id=str(clash.id)).id
    await perron.run_jobs()
    page = text(await client.get(f"/onboardings/{clash.id}"))
    assert "The provisioning stopped" in page and "NIS code 92054 already belongs" in page, page
    assert "Run the provisioning again" in page
    with platform_scope("test: look"):
        async with perron.database.session() as session:
            run = await session.get(PlatformJobRun, clash.job_id)
            assert run is not None and run.status.value == "failed" and run.attempts == 1
