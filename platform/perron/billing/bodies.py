"""Who pays: a commune for itself, or an intercommunale for its member communes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from perron.billing.models import BillingCustomer
from perron.errors import NotFound
from perron.tenancy.models import Commune, Intercommunale

BodyKind = Literal["commune", "intercommunale"]


@dataclass(frozen=True, slots=True)
class PayingBody:
    """A commune or an intercommunale, as billing refers to it (``key`` travels through
    Stripe as ``client_reference_id`` and ``metadata.perron_body``)."""

    kind: BodyKind
    id: UUID

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"

    @classmethod
    def of(cls, body: Commune | Intercommunale | PayingBody) -> PayingBody:
        if isinstance(body, PayingBody):
            return body
        if isinstance(body, Commune):
            return cls("commune", body.id)
        if isinstance(body, Intercommunale):
            return cls("intercommunale", body.id)
        raise TypeError(f"a paying body is a commune or an intercommunale, not {type(body).__name__}")

    @classmethod
    def parse(cls, key: str | None) -> PayingBody | None:
        kind, _, raw = (key or "").partition(":")
        if kind not in ("commune", "intercommunale"):
            return None
        try:
            return cls(kind, UUID(raw))  # type: ignore[arg-type]
        except ValueError:
            return None


Body = Commune | Intercommunale | PayingBody
"""What the billing functions accept: the ORM object the caller has, or a reference."""


async def load_body(session: AsyncSession, body: PayingBody) -> Commune | Intercommunale:
    model: type[Commune] | type[Intercommunale] = Commune if body.kind == "commune" else Intercommunale
    found: Commune | Intercommunale | None = await session.get(model, body.id)
    if found is None:
        raise NotFound(f"no {body.kind} has the id {body.id}")
    return found


def body_name(found: Commune | Intercommunale, language: str = "fr") -> str:
    return found.name(language)


def body_language(found: Commune | Intercommunale) -> str:
    return found.default_language if isinstance(found, Commune) else next(iter(found.names), "fr")


async def customer_of(session: AsyncSession, body: PayingBody) -> BillingCustomer | None:
    column = BillingCustomer.commune_id if body.kind == "commune" else BillingCustomer.intercommunale_id
    found: BillingCustomer | None = await session.scalar(select(BillingCustomer).where(column == body.id))
    return found


def body_of_customer(customer: BillingCustomer) -> PayingBody:
    if customer.commune_id is not None:
        return PayingBody("commune", customer.commune_id)
    assert customer.intercommunale_id is not None
    return PayingBody("intercommunale", customer.intercommunale_id)


async def communes_covered(session: AsyncSession, body: PayingBody) -> list[Commune]:
    """The communes a subscription of this body pays for, by slug."""
    if body.kind == "commune":
        commune = await session.get(Commune, body.id)
        return [commune] if commune is not None else []
    rows = await session.scalars(
        select(Commune).where(Commune.intercommunale_id == body.id).order_by(Commune.slug)
    )
    return list(rows)
