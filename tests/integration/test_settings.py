"""Settings resolve platform -> intercommunale -> commune, with locks and fallbacks."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from sqlalchemy import select

from perron.db.engine import Database
from perron.db.scope import platform_scope, tenant_scope
from perron.errors import Invalid
from perron.tenancy import actions
from perron.tenancy.models import Intercommunale, PlatformSettings
from perron.tenancy.settings import CoreSettings, read_layers, resolve, validate_values
from tests.conftest import MakeCommune


class Rewards(BaseModel):
    points_per_km: int = 10
    voucher_euros: int = 10
    currency_name: str = "points"


async def test_each_layer_overrides_the_one_before(database: Database, make_commune: MakeCommune) -> None:
    with platform_scope("test"):
        async with database.transaction() as session:
            body = await actions.create_intercommunale(session, slug="bep", names={"fr": "BEP"})
            session.add(
                PlatformSettings(namespace="module:rewards", values={"points_per_km": 8, "voucher_euros": 5})
            )
            await actions.update_intercommunale_settings(
                session, body, "module:rewards", {"points_per_km": 12}
            )
    member = await make_commune("andenne", intercommunale="bep")
    alone = await make_commune("hannut")
    with tenant_scope(member.id):
        async with database.transaction() as session:
            await actions.update_commune_settings(
                session, member.id, "module:rewards", {"currency_name": "ours"}
            )
            resolved = await resolve(session, member.id, "module:rewards", Rewards)
    assert resolved == Rewards(points_per_km=12, voucher_euros=5, currency_name="ours")
    with tenant_scope(alone.id):
        async with database.session() as session:
            assert await resolve(session, alone.id, "module:rewards", Rewards) == Rewards(
                points_per_km=8, voucher_euros=5
            )


async def test_locked_keys_cannot_be_overridden(database: Database, make_commune: MakeCommune) -> None:
    with platform_scope("test"):
        async with database.transaction() as session:
            body = await actions.create_intercommunale(session, slug="idelux", names={"fr": "Idelux"})
            await actions.update_intercommunale_settings(
                session, body, "module:rewards", {"voucher_euros": 20}, locked=["voucher_euros"]
            )
            with pytest.raises(Invalid, match="cannot lock points_per_km"):
                await actions.update_intercommunale_settings(
                    session, body, "module:rewards", {}, ["points_per_km"]
                )
    member = await make_commune("arlon", intercommunale="idelux")
    with tenant_scope(member.id):
        async with database.transaction() as session:
            await actions.update_commune_settings(session, member.id, "module:rewards", {"voucher_euros": 50})
            assert (await resolve(session, member.id, "module:rewards", Rewards)).voucher_euros == 20
            layers = await read_layers(session, member.id, "module:rewards")
    with pytest.raises(Invalid, match="intercommunale sets this value"):
        validate_values(Rewards, {"voucher_euros": 50}, locked=layers.locked)


async def test_a_stored_value_that_no_longer_validates_falls_back(
    database: Database, make_commune: MakeCommune
) -> None:
    commune = await make_commune("dinant")
    with tenant_scope(commune.id):
        async with database.transaction() as session:
            await actions.update_commune_settings(
                session, commune.id, "module:rewards", {"points_per_km": "lots"}
            )
            assert (await resolve(session, commune.id, "module:rewards", Rewards)).points_per_km == 10


async def test_core_settings_are_validated_when_stored(database: Database, make_commune: MakeCommune) -> None:
    commune = await make_commune("gembloux")
    with tenant_scope(commune.id), pytest.raises(Invalid, match="contact_email"):
        async with database.transaction() as session:
            await actions.update_commune_settings(session, commune.id, "core", {"contact_email": "nope"})


def test_values_are_validated_with_the_field_named() -> None:
    with pytest.raises(Invalid) as caught:
        validate_values(CoreSettings, {"contact_email": "not-an-address"})
    assert caught.value.field == "contact_email"
    with pytest.raises(Invalid, match="no such setting"):
        validate_values(CoreSettings, {"colour": "red"})
    assert validate_values(CoreSettings, {"contact_phone": "+32 81 00 00 00"}) == {
        "contact_phone": "+32 81 00 00 00"
    }


async def test_unknown_namespace_is_refused(database: Database, make_commune: MakeCommune) -> None:
    commune = await make_commune("ciney")
    with tenant_scope(commune.id):
        async with database.session() as session:
            with pytest.raises(Invalid, match="no settings are known under 'module:nothing'"):
                await resolve(session, commune.id, "module:nothing")
            assert (await session.scalar(select(Intercommunale))) is None
