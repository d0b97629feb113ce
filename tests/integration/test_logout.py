"""Logging out ends the session on the server, not only in the browser."""

from __future__ import annotations

from perron.audit import SYSTEM, acting_as
from perron.db.scope import tenant_scope
from perron.identity import actions as identity
from perron.identity.models import Assurance
from perron.identity.sessions import SESSION_COOKIE, open_session


async def test_logout_ends_the_session_for_good(runtime, client_for, two_communes) -> None:
    alpha, _ = two_communes
    with tenant_scope(alpha.id), acting_as(SYSTEM):
        async with runtime.database.transaction() as session:
            account = await identity.create_account(session, alpha.id, display_name="Zoé Martin")
            token = await open_session(session, account, Assurance.SUBSTANTIAL)
    client = client_for("alpha.test")
    client.cookies.set(SESSION_COOKIE, token, domain="alpha.test")
    confirm = await client.get("/logout")
    assert confirm.status_code == 200 and "Zoé Martin" in confirm.text
    response = await client.post("/logout", data={"_csrf_token": client.cookies.get("perron_csrf")})
    assert response.status_code == 303
    assert (
        'perron_session=""' in response.headers["set-cookie"]
        or "perron_session=;" in response.headers["set-cookie"]
    )
    # The old token is worthless even if someone kept it.
    replay = client_for("alpha.test")
    replay.cookies.set(SESSION_COOKIE, token, domain="alpha.test")
    assert "Zoé Martin" not in (await replay.get("/")).text
    assert (await replay.get("/logout")).status_code == 303  # nobody to log out: back home
