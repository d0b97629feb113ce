"""How long onboarding takes (run by hand; figures go to docs/performance.md).

    .venv/bin/python bench/onboarding_bench.py [--postgres] [--keycloak] [--communes 50]

It builds Perron in this process exactly as ``perron dev`` or ``perron serve`` does (jobs
run by its own workers: in-process on SQLite, the same in-process workers on PostgreSQL as
the non-owner application role), creates an intercommunale offering the news module, then
measures, from the request to the last provisioning step committed:

  (1) one commune onboarded as the wizard does it (its seven steps, demo content included);
  (2) N communes (default 50) from one CSV file: the file checked line by line, N
      provisioning jobs queued, all of them run to the end.

With ``--keycloak`` the provisioning also creates each commune's login clients in the
running development Keycloak (infra/keycloak/keycloak.sh start) and removes them after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from perron.audit import SYSTEM, acting_as  # noqa: E402
from perron.config import load_settings  # noqa: E402
from perron.console import bulk, onboarding  # noqa: E402
from perron.console.models import Onboarding, OnboardingStatus  # noqa: E402
from perron.console.mutualisation import set_module_defaults  # noqa: E402
from perron.db.scope import platform_scope  # noqa: E402
from perron.logging import configure_logging  # noqa: E402
from perron.tenancy import actions  # noqa: E402
from perron.testing.database import reset_schema  # noqa: E402

PG_PORT = int(os.environ.get("PERRON_PG_PORT", "55432"))


def settings_for(args: argparse.Namespace, data_dir: Path) -> Any:
    values: dict[str, Any] = {
        "env": "test",
        "data_dir": data_dir,
        "console_host": "console.bench",
        "tenants_dir": ROOT / "tenants",
        "themes_dir": ROOT / "themes",
        "log_level": "WARNING",
        "login_enabled": bool(args.keycloak),
        "page_cache_size": 0,
    }
    if args.keycloak:
        values["keycloak_url"] = "http://127.0.0.1:58080"
        password_file = ROOT / ".perron" / "keycloak" / "admin-password"
        values["keycloak_admin_password"] = password_file.read_text().strip()
        values["public_port"] = 8000
    if args.postgres:
        values["database_url"] = f"postgresql://perron_app:perron_app@127.0.0.1:{PG_PORT}/perron_bench"
        values["database_owner_url"] = (
            f"postgresql://perron_owner:perron_owner@127.0.0.1:{PG_PORT}/perron_bench"
        )
    return load_settings(**values)


async def wait_for(runtime: Any, ids: list[Any]) -> None:
    deadline = time.monotonic() + 600
    while True:
        with platform_scope("bench: are the onboardings done"):
            async with runtime.database.session() as session:
                done = await session.scalar(
                    select(func.count())
                    .select_from(Onboarding)
                    .where(Onboarding.id.in_(ids), Onboarding.status == OnboardingStatus.DONE)
                )
        if done == len(ids):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {done} of {len(ids)} onboardings finished")
        await asyncio.sleep(0.02)


def spec(n: int) -> dict[str, Any]:
    return {
        "intercommunale": "bench",
        "slug": f"bench-one-{n}",
        "names": {"fr": f"Banc {n}", "nl": f"Bank {n}"},
        "languages": ["fr", "nl"],
        "nis_code": str(70000 + n),
        "domains": [f"one{n}.bench.test", f"www.one{n}.bench.test"],
        "branding": {"palette": {}, "font": "system", "tagline": {"fr": "Banc d'essai"}},
        "modules": {"news": {}},
        "admins": [{"email": f"admin{n}@one.bench.test", "name": "Anne Admin", "language": "fr"}],
    }


async def one_commune(runtime: Any, n: int) -> float:
    started = time.perf_counter()
    with platform_scope("bench: onboard one commune"), acting_as(SYSTEM):
        async with runtime.database.transaction() as session:
            body = await actions.get_intercommunale(session, "bench")
            draft = await onboarding.new_draft(session, body, "bench")
            draft.spec = draft.spec | spec(n)
            await onboarding.launch(session, draft, console_host="console.bench", demo=True)
    await wait_for(runtime, [draft.id])
    return time.perf_counter() - started


async def many_communes(runtime: Any, count: int) -> tuple[float, float]:
    lines = ["name;nis;domain;languages;admin_email"] + [
        f"Commune {n};{80000 + n};c{n}.bench.test;fr nl;admin{n}@c{n}.bench.test" for n in range(count)
    ]
    started = time.perf_counter()
    with platform_scope("bench: onboard from a CSV file"), acting_as(SYSTEM):
        async with runtime.database.transaction() as session:
            body = await actions.get_intercommunale(session, "bench")
            report = await bulk.import_file(
                session,
                body=body,
                data="\n".join(lines).encode(),
                filename="bench.csv",
                created_by="bench",
                console_host="console.bench",
            )
    checked = time.perf_counter() - started
    ids = [entry["onboarding_id"] for entry in report.lines if "onboarding_id" in entry]
    assert len(ids) == count, report.lines[:3]
    import uuid

    await wait_for(runtime, [uuid.UUID(value) for value in ids])
    return checked, time.perf_counter() - started


async def remove_bench_clients(settings: Any) -> None:
    """The login clients and staff logins the benchmark made (only those) leave the development
    Keycloak."""
    from perron.identity import keycloak as kc
    from perron.identity.oidc import CITIZENS, STAFF

    for realm in (CITIZENS, STAFF):
        async with kc.connected(settings, realm) as connection:
            for client in await connection.a_get_clients():
                name = client["clientId"]
                if name.startswith(("commune-bench-one-", "commune-commune-")):
                    await connection.a_delete_client(client["id"])
    async with kc.connected(settings, STAFF) as connection:
        for person in await connection.a_get_users({"search": ".bench.test", "max": 1000}):
            if str(person.get("email", "")).endswith(".bench.test"):
                await connection.a_delete_user(person["id"])


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from perron.web.app import build
    from perron.web.asgi import _start_lifespan

    data_dir = Path(tempfile.mkdtemp(prefix="perron-bench-"))
    settings = settings_for(args, data_dir)
    configure_logging(settings)
    reset_schema(settings)
    app, runtime = build(settings)
    stop = await _start_lifespan(app)
    try:
        with platform_scope("bench: an intercommunale"), acting_as(SYSTEM):
            async with runtime.database.transaction() as session:
                body = await actions.create_intercommunale(
                    session, slug="bench", names={"fr": "Banc d'essai"}
                )
                await set_module_defaults(session, body, {"news"})
        singles = [await one_commune(runtime, n) for n in range(args.repeat)]
        checked, total = await many_communes(runtime, args.communes)
    finally:
        await stop()
        if args.keycloak:
            await remove_bench_clients(settings)
    return {
        "database": "PostgreSQL" if args.postgres else "SQLite",
        "keycloak": bool(args.keycloak),
        "one_commune_seconds": {
            "median": round(statistics.median(singles), 3),
            "min": round(min(singles), 3),
            "max": round(max(singles), 3),
            "runs": len(singles),
        },
        "csv": {
            "communes": args.communes,
            "file_checked_seconds": round(checked, 3),
            "all_done_seconds": round(total, 3),
            "per_commune_seconds": round(total / args.communes, 3),
        },
    }


if __name__ == "__main__":
    if "--postgres" in sys.argv:
        subprocess.run([str(ROOT / "infra" / "postgres" / "pg.sh"), "start"], check=True, capture_output=True)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL (perron_bench) instead of SQLite")
    parser.add_argument("--keycloak", action="store_true", help="also create the login clients at Keycloak")
    parser.add_argument("--communes", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5, help="single onboardings to time")
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
