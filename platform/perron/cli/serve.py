"""``perron serve``, ``perron dev`` and ``perron worker``: the long-running processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import uvicorn
from sqlalchemy import select

from perron.cli.common import fail, out, run_async, settings_from
from perron.cli.tenants import apply_folder, print_reports
from perron.config import Settings
from perron.db import migrate
from perron.db.scope import platform_scope
from perron.runtime import Runtime, command_runtime
from perron.tenancy import actions
from perron.tenancy.hosts import display_host
from perron.tenancy.models import CommuneStatus


def uvicorn_options(settings: Settings, *, workers: int = 1, reload: bool = False) -> dict[str, Any]:
    """How every Perron server runs (the benchmark serves its bare app the same way)."""
    return {
        "workers": None if reload else workers,
        "reload": reload,
        "reload_dirs": ["platform", "modules", "themes"] if reload else None,
        "proxy_headers": True,
        "forwarded_allow_ips": ",".join(settings.trusted_proxies),
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "timeout_graceful_shutdown": 20,
    }


def _serve(settings: Settings, host: str, port: int, workers: int, reload: bool) -> None:
    uvicorn.run(
        "perron.web.app:create_app",
        factory=True,
        host=host,
        port=port,
        **uvicorn_options(settings, workers=workers, reload=reload),
    )


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Server processes.")
@click.option("--reload", is_flag=True, help="Restart when the code changes (development).")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int, reload: bool) -> None:
    """Serve every commune's site and the console (the database must be up to date)."""
    settings = settings_from(ctx)
    if settings.jobs_in_process and workers > 1:
        out.print("Note: without PERRON_REDIS_URL each server process also runs jobs in its own threads.")
    _serve(settings, host, port, workers, reload)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--reload", is_flag=True, help="Restart when the code changes.")
@click.pass_context
def dev(ctx: click.Context, host: str, port: int, reload: bool) -> None:
    """Run everything on this machine: upgrade, load the demo communes, serve."""
    settings = settings_from(ctx)
    where = (
        f"SQLite file {settings.database.database}"
        if not settings.is_postgres
        else settings.database.render_as_string(hide_password=True)
    )
    jobs = "jobs in process" if settings.jobs_in_process else "jobs on Redis (start `perron worker` too)"
    out.print(f"[bold]Perron[/] — database: {where}; {jobs}")
    try:
        applied = migrate.upgrade(settings, on_step=lambda step: out.print(f"  schema: applied {step}"))
    except Exception as error:
        fail(f"the database could not be upgraded: {error}")
    if not applied:
        out.print("  schema: up to date")
    reports = asyncio.run(apply_folder(settings, settings.tenants_dir, create_only=True))
    print_reports(reports)
    sites = asyncio.run(_open_sites(settings))
    shown_port = settings.public_port or port
    if settings.login_enabled:
        # The sites' login clients carry this port in their redirect URIs; the server
        # process (started below from the environment) must see it too.
        os.environ["PERRON_PUBLIC_PORT"] = str(shown_port)
        settings = settings.model_copy(update={"public_port": shown_port})
        if settings.smtp_host is None and settings.mail_enabled:
            settings = _mail_to_folder(settings)
        start_keycloak(settings)
        asyncio.run(_provision_keycloak(settings))
        asyncio.run(_demo_console_logins(settings))
    else:
        out.print("Login is switched off (PERRON_LOGIN_ENABLED=false): nobody can log in.")
    suffix = "" if shown_port in (80, 443) else f":{shown_port}"
    out.print("\nThe communes answer at:")
    for name, primary in sites:
        out.print(f"  {name:<24} http://{display_host(primary)}{suffix}/")
    out.print(f"  {'Platform console':<24} http://{settings.console_host}{suffix}/")
    out.print("Stop with Ctrl+C.\n")
    _serve(settings, host, port, 1, reload)


def _mail_to_folder(settings: Settings) -> Settings:
    """Keycloak sends e-mails only by SMTP: catch Perron's and Keycloak's on loopback and write
    them all as .eml files in the mail folder, as Perron alone would."""
    from perron.mail import devsink

    try:
        devsink.start(settings.mail_folder)
    except OSError as error:
        fail(f"the development mail server could not listen on port {devsink.DEV_SMTP_PORT}: {error}")
    values = {"smtp_host": "127.0.0.1", "smtp_port": devsink.DEV_SMTP_PORT, "smtp_starttls": False}
    for name, value in values.items():
        os.environ[f"PERRON_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    out.print(f"  e-mails (Perron's and Keycloak's): written to {settings.mail_folder}/ as .eml files")
    return settings.model_copy(update=values)


def start_keycloak(settings: Settings) -> None:
    """Start (or find running) the development Keycloak with ``infra/keycloak/keycloak.sh``."""
    launcher = Path("infra/keycloak/keycloak.sh")
    if not launcher.exists():
        fail(
            f"{launcher} is missing: run `perron dev` from the repository's folder, point "
            "PERRON_KEYCLOAK_URL at a running Keycloak with PERRON_KEYCLOAK_ADMIN_PASSWORD, or set "
            "PERRON_LOGIN_ENABLED=false to run without login"
        )
    out.print("Keycloak (login): starting or reusing the development server …")
    environment = os.environ | {"PERRON_KEYCLOAK_HOME": str((settings.data_dir / "keycloak").resolve())}
    port = urlsplit(settings.keycloak_url).port
    if port:
        environment["PERRON_KEYCLOAK_PORT"] = str(port)
    result = subprocess.run(["bash", str(launcher), "start"], env=environment, check=False)  # noqa: S603,S607
    if result.returncode != 0:
        fail(
            "Keycloak could not be started (see the message above). Install what it names and "
            "run `make run` again, or set PERRON_LOGIN_ENABLED=false to run without login."
        )


async def _provision_keycloak(settings: Settings) -> None:
    from perron.cli.keycloak import provision_all
    from perron.identity import keycloak as kc

    try:
        await provision_all(settings, settings.public_port)
    except kc.KeycloakUnavailable as error:
        fail(f"Keycloak is not answering: {error}")
    out.print(f"  Keycloak: realms and commune clients ready at {settings.keycloak_url}")
    if settings.uses_itsme_sandbox:
        out.print("  itsme sandbox citizens (user name / password; level 2 asks a TOTP code):")
        for person in kc.sandbox_citizens():
            out.print(f"    {person.get('username')} / {person.get('password')}  {person.get('_note', '')}")


DEMO_CONSOLE = (
    ("operator@perron.localhost", "Olga", "Operator", None),
    ("bep@perron.localhost", "Bastien", "BEP", "bep"),
)
DEMO_PASSWORD = "Perron-demo-2026"  # noqa: S105 - development logins, printed by `perron dev`


async def _demo_console_logins(settings: Settings) -> None:
    """Development: an operator and BEP's administrator, to try the console at once."""
    from perron.identity import keycloak as kc
    from perron.identity import roles
    from perron.identity.models import PlatformRole

    if settings.env != "development":
        return
    async with command_runtime(settings) as runtime:
        with platform_scope("perron dev: demo console logins"):
            async with runtime.database.transaction() as session:
                for email, first, last, body in DEMO_CONSOLE:
                    held = await session.scalar(select(PlatformRole.id).where(PlatformRole.email == email))
                    if held is not None:
                        continue
                    if body is None:
                        await roles.grant_operator(session, email, f"{first} {last}")
                    else:
                        found = await actions.get_intercommunale(session, body)
                        await roles.grant_intercommunale_admin(session, found.id, email, f"{first} {last}")
    for email, first, last, _ in DEMO_CONSOLE:
        await kc.ensure_demo_staff_user(settings, email, first, last, DEMO_PASSWORD)
    out.print("  console logins (password; a one-time code is set up at the first login):")
    for email, _, _, body in DEMO_CONSOLE:
        out.print(
            f"    {email} / {DEMO_PASSWORD}  ({'operator' if body is None else 'administrator of ' + body})"
        )


async def _open_sites(settings: Settings) -> list[tuple[str, str]]:
    async with command_runtime(settings) as runtime, runtime.database.session() as session:
        rows = await actions.communes_with_primary_host(session, CommuneStatus.ACTIVE)
        return [(commune.name(), host) for commune, host in rows]


@click.command()
@click.option("--threads", type=click.IntRange(1, 64), help="Job threads (default PERRON_WORKER_THREADS).")
@click.pass_context
@run_async
async def worker(ctx: click.Context, threads: int | None) -> None:
    """Run background jobs from the Redis broker until stopped."""
    settings = settings_from(ctx)
    if settings.jobs_in_process:
        fail(
            "jobs run inside `perron serve` in the embedded mode; "
            "set PERRON_REDIS_URL to run separate workers",
            code=2,
        )
    if threads:
        settings = settings.model_copy(update={"worker_threads": threads})
    runtime = Runtime(settings, run_worker=True)
    await runtime.start(serve=False)
    out.print(f"Worker running with {settings.worker_threads} thread(s); stop with Ctrl+C.")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    out.print("Stopping: finishing the jobs in progress …")
    await runtime.stop()
