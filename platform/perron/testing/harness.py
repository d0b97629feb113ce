"""What a test drives Perron with: :class:`Harness`."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from perron import signals
from perron.audit import SYSTEM, acting_as
from perron.db.scope import no_scope, platform_scope, tenant_scope
from perron.identity import actions as identity
from perron.identity.models import Account, AccountKind, Assurance
from perron.identity.sessions import SESSION_COOKIE, open_session
from perron.jobs.status import ACTIVE, JobRun, PlatformJobRun
from perron.modules import activation
from perron.runtime import Runtime
from perron.tenancy import actions
from perron.tenancy.models import Commune, CommuneStatus


@dataclass(frozen=True)
class Tenant:
    """A throwaway commune."""

    commune: Commune
    host: str

    @property
    def id(self) -> UUID:
        return self.commune.id

    @property
    def slug(self) -> str:
        return self.commune.slug


@dataclass(frozen=True)
class ConsolePerson:
    """Someone logged in to the platform console (``token`` is the cookie)."""

    email: str
    token: str
    subject: str


@dataclass(frozen=True)
class Person:
    """Someone with an account in a commune and a login session (``token`` is the cookie)."""

    tenant: Tenant
    account: Account
    token: str
    assurance: Assurance

    @property
    def id(self) -> UUID:
        return self.account.id


class Harness:
    def __init__(self, app: Any, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime
        self._nis = itertools.count(90001, 13)
        self._clients: list[httpx.AsyncClient] = []

    @property
    def database(self) -> Any:
        return self.runtime.database

    async def commune(
        self,
        slug: str,
        *,
        languages: Iterable[str] = ("fr",),
        names: Mapping[str, str] | None = None,
        status: CommuneStatus = CommuneStatus.ACTIVE,
        intercommunale: str | None = None,
    ) -> Tenant:
        """A commune answering at ``<slug>.test`` (a member of ``intercommunale`` if given)."""
        codes = list(languages)
        host = f"{slug}.test"
        with no_scope(), platform_scope("test: create a commune"), acting_as(SYSTEM):
            async with self.database.transaction() as session:
                commune = await actions.create_commune(
                    session,
                    slug=slug,
                    nis_code=str(next(self._nis)),
                    names=dict(names or {code: slug.replace("-", " ").title() for code in codes}),
                    languages=codes,
                    domains=[host],
                    console_host=self.runtime.settings.console_host,
                    intercommunale=intercommunale,
                    status=CommuneStatus.ACTIVE if status is not CommuneStatus.PROVISIONING else status,
                )
                if status in (CommuneStatus.SUSPENDED, CommuneStatus.ARCHIVED):
                    await actions.set_status(session, commune, status)
        return Tenant(commune, host)

    @asynccontextmanager
    async def transaction(self, tenant: Tenant) -> AsyncIterator[AsyncSession]:
        """A transaction in the commune's scope, committed at the end of the block."""
        with tenant_scope(tenant.id), acting_as(SYSTEM):
            async with self.database.transaction() as session:
                yield session

    async def enable(
        self, tenant: Tenant, module: str, *, settings: Mapping[str, Any] | None = None, demo: bool = False
    ) -> None:
        """Switch a module on for the commune (with its own settings, and demo content)."""
        async with self.transaction(tenant) as session:
            if settings:
                await activation.update_settings(session, tenant.id, module, dict(settings))
            await activation.enable(session, tenant.id, module)
            if demo:
                await activation.seed(session, tenant.id, module)
        await self.settle()

    async def disable(self, tenant: Tenant, module: str) -> None:
        async with self.transaction(tenant) as session:
            await activation.disable(session, tenant.id, module)
        await self.settle()

    async def person(
        self,
        tenant: Tenant,
        *,
        kind: AccountKind = AccountKind.CITIZEN,
        assurance: Assurance = Assurance.SUBSTANTIAL,
        name: str | None = None,
        roles: Iterable[str] = (),
        resident: bool = True,
        language: str | None = None,
        email: str | None = None,
        street: str | None = None,
        house_number: str | None = None,
        postcode: str | None = None,
        birth_year: int | None = None,
    ) -> Person:
        """Someone logged in to the commune's site at the given level of assurance."""
        async with self.transaction(tenant) as session:
            account = await identity.create_account(
                session,
                tenant.id,
                display_name=name or f"{kind.value.title()} {next(self._nis)}",
                kind=kind,
                roles=roles,
                language=language or tenant.commune.languages[0],
                email=email,
                assurance=assurance,
                resident=resident,
                street=street,
                house_number=house_number,
                postcode=postcode,
                birth_year=birth_year,
            )
            token = await open_session(session, account, assurance)
        await self.settle()
        return Person(tenant, account, token, assurance)

    async def citizen(self, tenant: Tenant, **options: Any) -> Person:
        return await self.person(tenant, kind=AccountKind.CITIZEN, **options)

    async def staff(self, tenant: Tenant, *, roles: Iterable[str] = ("admin",), **options: Any) -> Person:
        options.setdefault("resident", False)
        return await self.person(tenant, kind=AccountKind.STAFF, roles=roles, **options)

    async def console_person(
        self,
        *,
        operator: bool = False,
        intercommunales: Iterable[str] = (),
        email: str | None = None,
        name: str | None = None,
        language: str = "fr",
    ) -> ConsolePerson:
        """Someone logged in to the console: an operator, and/or the administrator of the
        intercommunales named by slug."""
        from perron.console.auth import open_console_session
        from perron.identity.models import PlatformRole
        from perron.identity.roles import INTERCOMMUNALE_ADMIN, OPERATOR

        number = next(self._nis)
        address = email or f"console-{number}@perron.test"
        subject = f"test-subject-{number}"
        with no_scope(), platform_scope("test: a console person"), acting_as(SYSTEM):
            async with self.database.transaction() as session:
                if operator:
                    session.add(
                        PlatformRole(
                            role=OPERATOR, email=address, subject=subject, display_name=name or address
                        )
                    )
                for slug in intercommunales:
                    body = await actions.get_intercommunale(session, slug)
                    session.add(
                        PlatformRole(
                            role=INTERCOMMUNALE_ADMIN,
                            intercommunale_id=body.id,
                            email=address,
                            subject=subject,
                            display_name=name or address,
                        )
                    )
                token = open_console_session(
                    session, email=address, subject=subject, display_name=name or address, language=language
                )
        return ConsolePerson(address, token, subject)

    def console_client(self, person: ConsolePerson | None = None, **options: Any) -> httpx.AsyncClient:
        """An HTTP client of the platform console (as ``person`` if given)."""
        from perron.console.auth import CONSOLE_COOKIE

        host = self.runtime.settings.console_host
        client = self.client(host, **options)
        if person is not None:
            client.cookies.set(CONSOLE_COOKIE, person.token, domain=host)
        return client

    async def intercommunale(self, slug: str, *, names: Mapping[str, str] | None = None) -> None:
        """An intercommunale (``bep``, ``idelux``...)."""
        with no_scope(), platform_scope("test: create an intercommunale"), acting_as(SYSTEM):
            async with self.database.transaction() as session:
                await actions.create_intercommunale(
                    session, slug=slug, names=dict(names or {"fr": slug.upper()})
                )

    def client(
        self, tenant: Tenant | str, *, person: Person | None = None, **options: Any
    ) -> httpx.AsyncClient:
        """An HTTP client whose requests go to the commune's host (as ``person`` if given)."""
        host = tenant if isinstance(tenant, str) else tenant.host
        transport = httpx.ASGITransport(app=self.app, client=("127.0.0.1", 50000))
        client = httpx.AsyncClient(transport=transport, base_url=f"http://{host}", **options)
        if person is not None:
            client.cookies.set(SESSION_COOKIE, person.token, domain=host)
        self._clients.append(client)
        return client

    async def form_token(self, client: httpx.AsyncClient, path: str) -> str:
        """Open a page with a form and return its CSRF token (forms need it to be accepted)."""
        response = await client.get(path)
        response.raise_for_status()
        token = client.cookies.get("perron_csrf")
        if not token:
            raise AssertionError(f"{path} set no CSRF cookie: is there a form on that page?")
        return token

    async def post_form(
        self, client: httpx.AsyncClient, form_page: str, action: str, data: Mapping[str, Any], **options: Any
    ) -> httpx.Response:
        """Submit a form as a browser would: open the page, then post with its CSRF token."""
        token = await self.form_token(client, form_page)
        return await client.post(action, data={**data, "_csrf_token": token}, **options)

    async def settle(self) -> None:
        """Let deliveries of signals sent by committed changes finish."""
        await signals.dispatcher.drain()

    async def run_jobs(self, rounds: int = 50) -> None:
        """Run every queued job, and the jobs and signals those cause, until all finished."""
        await run_jobs(self.runtime, rounds)

    async def quiesce(self) -> None:
        """What a test leaves behind is done before the next one starts: signals delivered,
        the outbox handed to the broker (a relay that a busy machine has not run yet would
        otherwise leave jobs to run after the test's data is gone), the queues emptied."""
        await signals.dispatcher.drain()
        await self.runtime.jobs.relay_once()
        await asyncio.to_thread(self.runtime.jobs.join)

    async def close(self) -> None:
        for client in self._clients:
            await client.aclose()
        self._clients.clear()


async def run_jobs(runtime: Runtime, rounds: int = 50) -> None:
    """Run queued jobs, and the jobs and signals they cause, until every job has finished.

    "Finished" is read from the jobs' status records: each is written with its outbox row
    and closed in the job's last transaction, so the answer does not depend on whether this
    helper or the server's own relay handed a message to the broker."""
    jobs = runtime.jobs
    for _ in range(rounds):
        await signals.dispatcher.drain()
        await jobs.relay_once()
        await asyncio.to_thread(jobs.join)
        await signals.dispatcher.drain()
        with platform_scope("test: are all jobs finished"):
            async with runtime.database.session() as session:
                active = [
                    await session.scalar(
                        select(func.count()).select_from(model).where(model.status.in_(ACTIVE))
                    )
                    for model in (JobRun, PlatformJobRun)
                ]
        if not any(active):
            return
        await asyncio.sleep(0.2)  # a retry waits out its backoff in the broker's delay queue
    raise AssertionError(f"jobs were still running after {rounds} rounds")
