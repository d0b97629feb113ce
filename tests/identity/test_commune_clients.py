"""A commune's login clients follow the commune, by jobs, against the real Keycloak: created
with it (one in the citizens realm, one in the staff realm, with its domains as exact
redirect URIs), updated when a domain is added, disabled when it is archived."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from perron.db.scope import platform_scope, tenant_scope
from perron.identity import keycloak as kc
from perron.identity.oidc import CITIZENS, STAFF
from perron.runtime import Runtime
from perron.tenancy import actions
from perron.tenancy.models import CommuneStatus
from perron.testing.database import reset_schema
from perron.testing.harness import run_jobs
from tests.conftest import base_settings

pytestmark = pytest.mark.keycloak

KEYCLOAK_URL = os.environ.get("PERRON_TEST_KEYCLOAK_URL", "http://127.0.0.1:58080").rstrip("/")
ADMIN_PASSWORD = os.environ.get("PERRON_TEST_KEYCLOAK_ADMIN_PASSWORD", "admin")
REQUIRED = os.environ.get("PERRON_TEST_KEYCLOAK_REQUIRED") == "1"
PORT = 8791


async def _client(settings: Any, realm: str, client_id: str) -> dict[str, Any] | None:
    async with kc.connected(settings, realm) as admin:
        found = await admin.a_get_clients()
    return next((client for client in found if client["clientId"] == client_id), None)


async def test_a_new_commune_gets_login_clients_that_follow_its_domains_and_archiving_disables_them(
    tmp_path: Path,
) -> None:
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            reachable = (await http.get(f"{KEYCLOAK_URL}/realms/master")).status_code == 200
    except httpx.HTTPError:
        reachable = False
    if not reachable:
        (pytest.fail if REQUIRED else pytest.skip)(f"Keycloak does not answer at {KEYCLOAK_URL}")
    settings = base_settings(
        tmp_path,
        login_enabled=True,
        keycloak_url=KEYCLOAK_URL,
        keycloak_admin_password=ADMIN_PASSWORD,
        public_port=PORT,
        itsme_sandbox=True,
    )
    reset_schema(settings)
    await kc.provision_realms(settings)
    slug = f"kc-new-{int(time.time())}"
    runtime = Runtime(settings, run_worker=True)
    await runtime.start(serve=False)
    try:
        with platform_scope("test: onboard a commune"):
            async with runtime.database.transaction() as session:
                commune = await actions.create_commune(
                    session,
                    slug=slug,
                    nis_code="99001",
                    names={"fr": "Nouvelle commune", "de": "Neue Gemeinde"},
                    languages=["fr", "de"],
                    domains=[f"{slug}.localhost"],
                    status=CommuneStatus.ACTIVE,
                )
        await run_jobs(runtime)
        for realm in (CITIZENS, STAFF):
            client = await _client(settings, realm, f"commune-{slug}")
            assert client is not None, f"no client in {realm}"
            assert client["enabled"]
            assert client["redirectUris"] == [f"http://{slug}.localhost:{PORT}/login/callback"]
            assert client["attributes"]["perron_name"] == "Nouvelle commune"

        with tenant_scope(commune.id), platform_scope("test: a second domain"):
            async with runtime.database.transaction() as session:
                found = await actions.get_commune(session, slug)
                await actions.add_domain(session, found, f"www.{slug}.localhost")
        await run_jobs(runtime)
        client = await _client(settings, CITIZENS, f"commune-{slug}")
        assert client is not None
        hosts = (f"{slug}.localhost", f"www.{slug}.localhost")
        assert sorted(client["redirectUris"]) == sorted(
            f"http://{host}:{PORT}/login/callback" for host in hosts
        )

        with tenant_scope(commune.id), platform_scope("test: archive the commune"):
            async with runtime.database.transaction() as session:
                found = await actions.get_commune(session, slug)
                await actions.set_status(session, found, CommuneStatus.ARCHIVED)
        await run_jobs(runtime)
        for realm in (CITIZENS, STAFF):
            client = await _client(settings, realm, f"commune-{slug}")
            assert client is not None and client["enabled"] is False, f"{realm} client still enabled"
    finally:
        await runtime.stop()
        for realm in (CITIZENS, STAFF):
            client = await _client(settings, realm, f"commune-{slug}")
            if client is not None:
                async with kc.connected(settings, realm) as admin:
                    await admin.a_delete_client(client["id"])
