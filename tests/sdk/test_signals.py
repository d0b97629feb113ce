"""Signals: after commit, only to modules switched on for the commune, failures contained."""

from __future__ import annotations

from uuid import UUID

import pytest

from perron import signals
from perron.audit import SYSTEM, acting_as
from perron.db.scope import tenant_scope
from perron.identity import actions as identity
from perron.modules import activation


@pytest.fixture
def received():
    """Receivers of ``account_created``: one of the news module, one of the platform, and one
    of the news module that always fails."""
    calls: list[tuple[str, UUID, UUID]] = []

    async def news_receiver(ctx: signals.SignalContext, payload: signals.AccountEvent) -> None:
        calls.append(("news", ctx.tenant_id, payload.account_id))

    async def platform_receiver(ctx: signals.SignalContext, payload: signals.AccountEvent) -> None:
        calls.append(("platform", ctx.tenant_id, payload.account_id))

    async def failing_receiver(ctx: signals.SignalContext, payload: signals.AccountEvent) -> None:
        raise RuntimeError("this receiver is broken")

    signal = signals.account_created
    before = list(signal.receivers)
    signal.connect(failing_receiver, module="news")
    signal.connect(news_receiver, module="news")
    signal.connect(platform_receiver, module=None)
    yield calls
    signal.receivers[:] = before


async def create_person(runtime, commune, name: str, *, fail_after: bool = False):
    with tenant_scope(commune.id), acting_as(SYSTEM):
        async with runtime.database.transaction() as session:
            account = await identity.create_account(session, commune.id, display_name=name)
            if fail_after:
                raise RuntimeError("the change is rolled back")
    return account


async def enable_news(runtime, commune) -> None:
    with tenant_scope(commune.id), acting_as(SYSTEM):
        async with runtime.database.transaction() as session:
            await activation.enable(session, commune.id, "news")


async def test_delivered_after_commit_only_to_modules_switched_on(runtime, two_communes, received) -> None:
    alpha, bravo = two_communes
    await enable_news(runtime, alpha)
    in_alpha = await create_person(runtime, alpha, "Alice")
    in_bravo = await create_person(runtime, bravo, "Bob")
    await signals.dispatcher.drain()
    assert sorted(received) == sorted(
        [
            ("news", alpha.id, in_alpha.id),
            ("platform", alpha.id, in_alpha.id),
            ("platform", bravo.id, in_bravo.id),  # news is off in bravo: its receiver is not called
        ]
    )


async def test_a_rolled_back_change_sends_nothing(runtime, two_communes, received) -> None:
    alpha, _ = two_communes
    with pytest.raises(RuntimeError):
        await create_person(runtime, alpha, "Ghost", fail_after=True)
    await signals.dispatcher.drain()
    assert received == []


async def test_a_failing_receiver_breaks_neither_the_others_nor_the_change(
    runtime, two_communes, received, client_for
) -> None:
    alpha, _ = two_communes
    await enable_news(runtime, alpha)
    account = await create_person(runtime, alpha, "Carla")  # the failing receiver runs first
    await signals.dispatcher.drain()
    assert ("news", alpha.id, account.id) in received
    assert ("platform", alpha.id, account.id) in received
    with tenant_scope(alpha.id):
        async with runtime.database.session() as session:
            assert (await identity.get_account(session, account.id)).display_name == "Carla"


def test_a_signal_refuses_the_wrong_payload() -> None:
    with pytest.raises(TypeError, match="carries AccountEvent"):
        signals.account_created.send(None, signals.ModuleToggled("news"))  # type: ignore[arg-type]
