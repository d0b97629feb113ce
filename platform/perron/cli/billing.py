"""``perron billing``: plans, Stripe customers, subscriptions, invoices and webhook events."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click
from rich.table import Table
from sqlalchemy import select

from perron.audit import acting_as, command_line_actor
from perron.billing import PayingBody
from perron.billing.jobs import PROCESS_EVENT_JOB, REFRESH_JOB
from perron.billing.models import BillingEvent
from perron.billing.plans import define_plan, list_plans, parse_amount, retire_plan, sync_plans
from perron.cli.common import fail, out, parse_pairs, run_async, settings_from
from perron.cli.tenants import platform_transaction
from perron.config import Settings
from perron.db.scope import platform_scope
from perron.jobs import enqueue
from perron.runtime import command_runtime
from perron.tenancy import actions


@click.group()
def billing() -> None:
    """Billing with Stripe: plans, customers, subscriptions, invoices, webhook events."""


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:.2f} {currency.upper()}"


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "—"


def _require_billing(settings: Settings) -> None:
    if not settings.billing_enabled:
        fail("billing is switched off (PERRON_BILLING_ENABLED)")


body_options = [
    click.option("--commune", "commune", metavar="SLUG", help="The commune paying for itself."),
    click.option("--intercommunale", "intercommunale", metavar="SLUG", help="The intercommunale paying."),
]


def with_body(fn: Any) -> Any:
    for option in reversed(body_options):
        fn = option(fn)
    return fn


async def _body(runtime: Any, commune: str | None, intercommunale: str | None) -> PayingBody:
    if (commune is None) == (intercommunale is None):
        fail("name the paying body: --commune SLUG or --intercommunale SLUG")
    with platform_scope("perron billing: find the paying body"):
        async with runtime.database.session() as session:
            if commune is not None:
                return PayingBody.of(await actions.get_commune(session, commune))
            assert intercommunale is not None
            return PayingBody.of(await actions.get_intercommunale(session, intercommunale))


@billing.command("plans")
@click.option("--all", "include_retired", is_flag=True, help="Include retired plans.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
@run_async
async def plans_(ctx: click.Context, include_retired: bool, as_json: bool) -> None:
    """List the plans."""
    async with command_runtime(settings_from(ctx)) as runtime:
        with platform_scope("perron billing plans"):
            async with runtime.database.session() as session:
                plans = await list_plans(session, include_retired=include_retired)
    if as_json:
        out.print_json(
            json.dumps(
                [
                    {
                        "code": plan.code,
                        "names": plan.names,
                        "modules": plan.modules,
                        "interval": plan.interval.value,
                        "unit_amount": plan.unit_amount,
                        "currency": plan.currency,
                        "trial_days": plan.trial_days,
                        "active": plan.active,
                        "stripe_product": plan.stripe_product_id,
                        "stripe_price": plan.stripe_price_id,
                        "in_stripe": plan.synced,
                    }
                    for plan in plans
                ]
            )
        )
        return
    if not plans:
        out.print("No plan yet: define one with `perron billing define-plan`.")
        return
    table = Table("code", "name", "modules", "price", "trial", "state", "Stripe price")
    for plan in plans:
        state = "retired" if not plan.active else ("in Stripe" if plan.synced else "to synchronise")
        table.add_row(
            plan.code,
            plan.name("fr"),
            ", ".join(plan.modules),
            f"{_money(plan.unit_amount, plan.currency)} / {plan.interval.value}",
            f"{plan.trial_days} days" if plan.trial_days else "—",
            state,
            plan.stripe_price_id or "—",
        )
    out.print(table)


@billing.command("define-plan")
@click.argument("code")
@click.option("--name", "names", multiple=True, required=True, metavar="LANG=NAME", help="Name per language.")
@click.option("--module", "modules", multiple=True, required=True, help="A module the plan covers (repeat).")
@click.option("--interval", type=click.Choice(["month", "year"]), required=True, help="How often it is paid.")
@click.option("--amount", required=True, help="Price per interval, such as 120 or 120.50.")
@click.option("--currency", default="eur", show_default=True)
@click.option(
    "--trial-days", default=0, show_default=True, type=int, help="Free days before the first payment."
)
@click.pass_context
@run_async
async def define_plan_(
    ctx: click.Context,
    code: str,
    names: tuple[str, ...],
    modules: tuple[str, ...],
    interval: str,
    amount: str,
    currency: str,
    trial_days: int,
) -> None:
    """Create a plan or change it (Stripe follows at the next `sync-plans`)."""
    cents = parse_amount(amount)
    async with platform_transaction(settings_from(ctx), f"perron billing define-plan {code}") as session:
        plan, changed = await define_plan(
            session,
            code=code,
            names=parse_pairs(names, "--name"),
            modules=modules,
            interval=interval,
            unit_amount=cents,
            currency=currency,
            trial_days=trial_days,
        )
        synced = plan.synced
    if not changed:
        out.print(f"Plan {code} already says that.")
    else:
        hint = "" if synced else " Run `perron billing sync-plans` to offer it through Stripe."
        out.print(f"Plan {code} is defined.{hint}")


@billing.command("retire-plan")
@click.argument("code")
@click.pass_context
@run_async
async def retire_plan_(ctx: click.Context, code: str) -> None:
    """Stop offering a plan (its subscribers keep it until their subscription ends)."""
    async with platform_transaction(settings_from(ctx), f"perron billing retire-plan {code}") as session:
        changed = await retire_plan(session, code)
    out.print(f"Plan {code} is retired." if changed else f"Plan {code} was already retired.")


@billing.command("sync-plans")
@click.pass_context
@run_async
async def sync_plans_(ctx: click.Context) -> None:
    """Create or update every plan's Stripe Product and Price, and store their ids."""
    settings = settings_from(ctx)
    _require_billing(settings)
    async with command_runtime(settings) as runtime:
        with acting_as(command_line_actor()):
            results = await sync_plans(settings, runtime.database)
    if not results:
        out.print("No plan to synchronise.")
    for result in results:
        what = "new price" if result.created_price else "up to date"
        out.print(f"{result.code}: product {result.product}, price {result.price or '— (retired)'} ({what})")


@billing.command("customer")
@with_body
@click.pass_context
@run_async
async def customer_(ctx: click.Context, commune: str | None, intercommunale: str | None) -> None:
    """Create the paying body's Stripe customer (once) and print its id."""
    settings = settings_from(ctx)
    _require_billing(settings)
    async with command_runtime(settings) as runtime:
        body = await _body(runtime, commune, intercommunale)
        with acting_as(command_line_actor()):
            customer = await runtime.billing.ensure_customer(body)
    out.print(customer)


@billing.command("overview")
@with_body
@click.pass_context
@run_async
async def overview_(ctx: click.Context, commune: str | None, intercommunale: str | None) -> None:
    """What a body pays, its subscriptions, and what each commune it pays for may use."""
    settings = settings_from(ctx)
    _require_billing(settings)
    async with command_runtime(settings) as runtime:
        body = await _body(runtime, commune, intercommunale)
        overview = await runtime.billing.billing_overview(body)
    out.print(f"[bold]{overview.name}[/] — Stripe customer {overview.stripe_customer or 'none yet'}")
    for charge in overview.charges:
        price = _money(charge.unit_amount, charge.currency)
        out.print(f"  pays {price} / {charge.interval.value} ({charge.plan})")
    if overview.subscriptions:
        table = Table("subscription", "status", "plans", "period end", "payment failed", "citizens until")
        for item in overview.subscriptions:
            ending = " (cancels)" if item.cancel_at_period_end else ""
            table.add_row(
                item.stripe_id,
                item.status,
                ", ".join(plan.code for plan in item.plans) or "—",
                _when(item.current_period_end) + ending,
                _when(item.payment_failed_at),
                _when(item.citizens_until),
            )
        out.print(table)
    table = Table("commune", "module", "switched on", "for citizens", "until")
    for commune_access in overview.communes:
        for module in commune_access.modules:
            table.add_row(
                commune_access.slug,
                module.module,
                "yes" if module.enabled else "no",
                f"{module.state} ({module.reason})",
                _when(module.until),
            )
    out.print(table)


@billing.command("invoices")
@with_body
@click.pass_context
@run_async
async def invoices_(ctx: click.Context, commune: str | None, intercommunale: str | None) -> None:
    """The body's invoices, newest first (Perron's copy: works while Stripe is down)."""
    settings = settings_from(ctx)
    _require_billing(settings)
    async with command_runtime(settings) as runtime:
        body = await _body(runtime, commune, intercommunale)
        invoices = await runtime.billing.invoices_of(body)
    if not invoices:
        out.print("No invoice yet.")
        return
    table = Table("number", "status", "total", "period", "issued", "link")
    for invoice in invoices:
        table.add_row(
            invoice.number or invoice.stripe_id,
            invoice.status,
            _money(invoice.total, invoice.currency),
            f"{_when(invoice.period_start)} → {_when(invoice.period_end)}",
            _when(invoice.issued_at),
            invoice.hosted_invoice_url or "—",
        )
    out.print(table)


@billing.command("events")
@click.option("--unprocessed", is_flag=True, help="Only events not processed yet.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.pass_context
@run_async
async def events_(ctx: click.Context, unprocessed: bool, limit: int) -> None:
    """The Stripe events received, newest first."""
    async with command_runtime(settings_from(ctx)) as runtime:
        with platform_scope("perron billing events"):
            async with runtime.database.session() as session:
                query = select(BillingEvent).order_by(BillingEvent.received_at.desc()).limit(limit)
                if unprocessed:
                    query = query.where(BillingEvent.processed_at.is_(None))
                rows = list(await session.scalars(query))
    if not rows:
        out.print("No event.")
        return
    table = Table("event", "type", "created", "about", "processed", "outcome")
    for row in rows:
        table.add_row(
            row.stripe_event_id,
            row.type,
            _when(row.created),
            row.subscription_ref or row.object_id or "—",
            _when(row.processed_at),
            row.outcome or "—",
        )
    out.print(table)


@billing.command("reprocess")
@click.argument("event_ids", nargs=-1)
@click.pass_context
@run_async
async def reprocess_(ctx: click.Context, event_ids: tuple[str, ...]) -> None:
    """Queue the processing of events not processed yet (all of them, or those named), e.g.
    events received while billing was switched off."""
    settings = settings_from(ctx)
    _require_billing(settings)
    async with platform_transaction(settings, "perron billing reprocess") as session:
        query = select(BillingEvent.stripe_event_id).where(
            BillingEvent.processed_at.is_(None), BillingEvent.outcome.is_(None)
        )
        if event_ids:
            query = query.where(BillingEvent.stripe_event_id.in_(event_ids))
        ids = list(await session.scalars(query.order_by(BillingEvent.created)))
        for event_id in ids:
            enqueue(session, PROCESS_EVENT_JOB, event_id=event_id)
    out.print(f"Queued {len(ids)} event(s).")


@billing.command("refresh")
@click.option("--commune", "commune", metavar="SLUG", help="Only this commune (default: all concerned).")
@click.pass_context
@run_async
async def refresh_(ctx: click.Context, commune: str | None) -> None:
    """Queue a new computation of what communes may use from their payers' subscriptions."""
    settings = settings_from(ctx)
    _require_billing(settings)
    async with platform_transaction(settings, "perron billing refresh") as session:
        ids = None if commune is None else [str((await actions.get_commune(session, commune)).id)]
        enqueue(session, REFRESH_JOB, commune_ids=ids)
    out.print("Queued." if commune is None else f"Queued for {commune}.")
