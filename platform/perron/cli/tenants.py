"""``perron tenants``: create, inspect, suspend, resume, archive and apply communes; export
one to an archive file, delete it, import it back."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import click
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from perron.audit import AuditEntry, acting_as, command_line_actor
from perron.cli.common import fail, out, parse_pairs, run_async, settings_from
from perron.config import Settings
from perron.db.scope import platform_scope, tenant_scope
from perron.errors import Invalid
from perron.i18n import using_language
from perron.media import MediaStore
from perron.modules.registry import registry
from perron.runtime import command_runtime
from perron.tenancy import actions
from perron.tenancy import archive as archives
from perron.tenancy.branding import BrandingError, check_logo_size
from perron.tenancy.definitions import (
    DefinitionError,
    DefinitionSet,
    Outcome,
    Report,
    apply_definitions,
    apply_modules,
    load_definitions,
)
from perron.tenancy.hosts import display_host
from perron.tenancy.models import HOME_SECTIONS, Commune, CommuneStatus, FontChoice, Intercommunale
from perron.tenancy.settings import CoreSettings, resolve
from perron.tenancy.site import load_site


@asynccontextmanager
async def platform_transaction(settings: Settings, reason: str) -> AsyncIterator[AsyncSession]:
    """One transaction in the platform scope, attributed to the person at the terminal."""
    async with command_runtime(settings) as runtime:
        with acting_as(command_line_actor()), platform_scope(reason):
            async with runtime.database.transaction() as session:
                yield session


@click.group()
def tenants() -> None:
    """Communes hosted by this deployment."""


@tenants.command("list")
@click.option(
    "--status", type=click.Choice([status.value for status in CommuneStatus]), help="Only this status."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
@run_async
async def list_(ctx: click.Context, status: str | None, as_json: bool) -> None:
    """List communes with their status and primary domain."""
    settings = settings_from(ctx)
    async with command_runtime(settings) as runtime, runtime.database.session() as session:
        rows = await actions.communes_with_primary_host(session, CommuneStatus(status) if status else None)
        communes = [commune for commune, _ in rows]
        primaries = {commune.slug: host for commune, host in rows}
    if as_json:
        out.print_json(
            json.dumps(
                [
                    {
                        "slug": c.slug,
                        "nis_code": c.nis_code,
                        "name": c.name(),
                        "status": c.status.value,
                        "languages": c.languages,
                        "primary_domain": primaries[c.slug],
                    }
                    for c in communes
                ]
            )
        )
        return
    if not communes:
        out.print("No commune yet. Create one with `perron tenants create` or `perron tenants apply`.")
        return
    table = Table("slug", "NIS", "name", "status", "languages", "primary domain")
    for commune in communes:
        table.add_row(
            commune.slug,
            commune.nis_code,
            commune.name(),
            commune.status.value,
            ", ".join(commune.languages),
            display_host(primaries[commune.slug]),
        )
    out.print(table)
    out.print(f"{len(communes)} commune(s)")


@tenants.command()
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option("--audit", "audit_count", default=10, show_default=True, help="How many recent audit entries.")
@click.pass_context
@run_async
async def show(ctx: click.Context, slug: str, as_json: bool, audit_count: int) -> None:
    """Show everything about one commune: identity, domains, branding, modules, recent changes."""
    settings = settings_from(ctx)
    async with command_runtime(settings) as runtime:
        async with runtime.database.session() as session:
            commune = await session.scalar(select(Commune).where(Commune.slug == slug))
            if commune is None:
                fail(f"no commune has the slug {slug!r}")
            assert commune is not None
            domains = await actions.commune_domains(session, commune.id)
            body = (
                await session.get(Intercommunale, commune.intercommunale_id)
                if commune.intercommunale_id
                else None
            )
        with tenant_scope(commune.id):
            async with runtime.database.session() as session:
                site = await load_site(session, commune.id)
                contact = await resolve(session, commune.id, "core", CoreSettings)
                entries = list(
                    await session.scalars(
                        select(AuditEntry).order_by(AuditEntry.occurred_at.desc()).limit(audit_count)
                    )
                )
    assert site is not None
    branding: dict[str, Any] = {
        **site.branding.palette,
        "font": site.branding.font.value,
        "tagline": dict(site.branding.tagline),
    }
    modules = sorted(site.enabled_modules)
    contact_values = contact.model_dump(exclude_none=True)
    data: dict[str, Any] = {
        "slug": commune.slug,
        "nis_code": commune.nis_code,
        "names": commune.names,
        "languages": commune.languages,
        "status": commune.status.value,
        "notice": commune.status_notice,
        "intercommunale": body.slug if body else None,
        "domains": [{"host": d.host, "primary": d.is_primary} for d in domains],
        "branding": branding,
        "modules": modules,
        "contact": contact_values,
        "audit": [
            {
                "at": e.occurred_at.isoformat(),
                "who": e.actor_label,
                "action": e.action,
                "object": e.object_id,
                "changes": e.changes,
            }
            for e in entries
        ],
    }
    if as_json:
        out.print_json(json.dumps(data, default=str))
        return
    out.print(f"[bold]{commune.name()}[/] ({commune.slug}, NIS {commune.nis_code}) — {commune.status.value}")
    out.print(f"names: {', '.join(f'{k}: {v}' for k, v in commune.names.items())}")
    out.print(f"languages: {', '.join(commune.languages)}; intercommunale: {data['intercommunale'] or '—'}")
    for domain in domains:
        out.print(f"domain: {display_host(domain.host)}{' (primary)' if domain.is_primary else ' → primary'}")
    out.print("branding: " + ", ".join(f"{k}={v}" for k, v in branding.items() if k != "tagline"))
    out.print(f"modules: {', '.join(modules) or 'none enabled'}")
    if contact_values:
        out.print("contact: " + "; ".join(f"{k}: {v}" for k, v in contact_values.items()))
    if entries:
        table = Table("when (UTC)", "who", "action", "object", title="recent changes")
        for entry in entries:
            table.add_row(
                entry.occurred_at.strftime("%Y-%m-%d %H:%M:%S"),
                entry.actor_label,
                entry.action,
                entry.object_id or "",
            )
        out.print(table)


@tenants.command()
@click.argument("slug")
@click.option("--nis", "nis_code", required=True, help="Statbel's five-digit code, such as 64034.")
@click.option("--name", "names", multiple=True, required=True, metavar="LANG=NAME", help="Name per language.")
@click.option(
    "--language", "languages", multiple=True, required=True, help="Offered language; first is default."
)
@click.option("--domain", "domains", multiple=True, required=True, help="Domain; the first is primary.")
@click.option("--intercommunale", help="Slug of the intercommunale the commune belongs to.")
@click.option("--active", is_flag=True, help="Open the site at once instead of starting as provisioning.")
@click.pass_context
@run_async
async def create(
    ctx: click.Context,
    slug: str,
    nis_code: str,
    names: tuple[str, ...],
    languages: tuple[str, ...],
    domains: tuple[str, ...],
    intercommunale: str | None,
    active: bool,
) -> None:
    """Create a commune."""
    settings = settings_from(ctx)
    async with platform_transaction(settings, f"perron tenants create {slug}") as session:
        commune = await actions.create_commune(
            session,
            slug=slug,
            nis_code=nis_code,
            names=parse_pairs(names, "--name"),
            languages=list(languages),
            domains=list(domains),
            console_host=settings.console_host,
            intercommunale=intercommunale,
            status=CommuneStatus.ACTIVE if active else CommuneStatus.PROVISIONING,
        )
    out.print(
        f"Created commune {commune.slug} ({commune.status.value}), answering at {display_host(domains[0])}."
    )


@tenants.command()
@click.argument("slug")
@click.option("--primary-color", help="Main colour (header), as #rrggbb.")
@click.option("--primary-text-color", help="Text on the main colour.")
@click.option("--accent-color", help="Links and buttons.")
@click.option("--background-color", help="Page background.")
@click.option("--text-color", help="Body text.")
@click.option("--font", type=click.Choice([font.value for font in FontChoice]), help="Font family.")
@click.option("--tagline", "taglines", multiple=True, metavar="LANG=TEXT", help="Tagline per language.")
@click.option(
    "--intro", "intros", multiple=True, metavar="LANG=TEXT", help="Home-page introduction per language."
)
@click.option(
    "--home-sections",
    metavar="LIST",
    help=f"What the home page shows, in order, separated by commas (from: {', '.join(HOME_SECTIONS)}).",
)
@click.option(
    "--logo",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Logo image: PNG, JPEG or WebP, at most 2 MB and 4000×4000 pixels.",
)
@click.option("--remove-logo", is_flag=True, help="Remove the logo (the icons show the commune's initial).")
@click.pass_context
@run_async
async def branding(
    ctx: click.Context,
    slug: str,
    primary_color: str | None,
    primary_text_color: str | None,
    accent_color: str | None,
    background_color: str | None,
    text_color: str | None,
    font: str | None,
    taglines: tuple[str, ...],
    intros: tuple[str, ...],
    home_sections: str | None,
    logo: Path | None,
    remove_logo: bool,
) -> None:
    """Change a commune's colours, font, texts, home page or logo (a palette failing WCAG AA
    is refused, and so is an image that is not a usable logo; either way nothing changes)."""
    if logo is not None and remove_logo:
        raise click.UsageError("give either --logo or --remove-logo, not both")
    with using_language("en"):  # the command line speaks English, like its other messages
        await _change_branding(
            settings_from(ctx),
            slug,
            colours={
                "primary_color": primary_color,
                "primary_text_color": primary_text_color,
                "accent_color": accent_color,
                "background_color": background_color,
                "text_color": text_color,
            },
            font=font,
            tagline=parse_pairs(taglines, "--tagline") if taglines else None,
            intro=parse_pairs(intros, "--intro") if intros else None,
            home_sections=home_sections,
            logo=logo,
            remove_logo=remove_logo,
        )


async def _change_branding(
    settings: Settings,
    slug: str,
    *,
    colours: dict[str, str | None],
    font: str | None,
    tagline: dict[str, str] | None,
    intro: dict[str, str] | None,
    home_sections: str | None,
    logo: Path | None,
    remove_logo: bool,
) -> None:
    palette = {name: value for name, value in colours.items() if value is not None}
    logo_data = _read_logo(logo) if logo is not None else None
    sections = (
        None if home_sections is None else [part.strip() for part in home_sections.split(",") if part.strip()]
    )
    media = MediaStore.for_settings(settings)
    async with platform_transaction(settings, f"perron tenants branding {slug}") as session:
        commune = await actions.get_commune(session, slug)
        changed = await actions.update_branding(
            session,
            commune.id,
            palette=palette,
            font=font,
            tagline=tagline,
            intro=intro,
            home_sections=sections,
        )
        logo_changed = False
        if logo is not None and logo_data is not None:
            logo_changed = await actions.set_logo(session, commune.id, logo_data, logo.name, media=media)
        elif remove_logo:
            logo_changed = await actions.remove_logo(session, commune.id, media=media)
    if changed:
        out.print(f"Updated the branding of {slug}.")
    if logo_changed:
        out.print(f"Removed the logo of {slug}." if remove_logo else f"Set the logo of {slug} from {logo}.")
    if not changed and not logo_changed:
        out.print(f"The branding of {slug} was already so.")


def _read_logo(path: Path) -> bytes:
    """The logo file's content, refused before reading when it is too large to be a logo."""
    try:
        check_logo_size(path.stat().st_size, path.name)
    except BrandingError as error:
        raise Invalid(error.field, str(error)) from None
    return path.read_bytes()


async def _change_status(
    settings: Settings, slug: str, status: CommuneStatus, notice: dict[str, str] | None = None
) -> bool:
    async with platform_transaction(settings, f"perron tenants {status.value} {slug}") as session:
        commune = await actions.get_commune(session, slug)
        return await actions.set_status(session, commune, status, notice=notice)


@tenants.command()
@click.argument("slug")
@click.option("--notice", "notices", multiple=True, metavar="LANG=TEXT", help="What the site tells visitors.")
@click.pass_context
@run_async
async def suspend(ctx: click.Context, slug: str, notices: tuple[str, ...]) -> None:
    """Suspend a commune's site: it shows a notice in its branding; all data is kept."""
    notice = parse_pairs(notices, "--notice") if notices else None
    changed = await _change_status(settings_from(ctx), slug, CommuneStatus.SUSPENDED, notice)
    out.print(
        f"Suspended {slug}: its site now shows the suspension notice."
        if changed
        else f"{slug} was already suspended: nothing changed."
    )


@tenants.command()
@click.argument("slug")
@click.pass_context
@run_async
async def resume(ctx: click.Context, slug: str) -> None:
    """Reopen a suspended commune's site."""
    changed = await _change_status(settings_from(ctx), slug, CommuneStatus.ACTIVE)
    out.print(
        f"Resumed {slug}: its site is open." if changed else f"{slug} was already active: nothing changed."
    )


@tenants.command()
@click.argument("slug")
@click.pass_context
@run_async
async def activate(ctx: click.Context, slug: str) -> None:
    """Open a commune that is still being provisioned."""
    changed = await _change_status(settings_from(ctx), slug, CommuneStatus.ACTIVE)
    out.print(
        f"Activated {slug}: its site is open." if changed else f"{slug} was already active: nothing changed."
    )


@tenants.command()
@click.argument("slug")
@click.option("--yes", is_flag=True, help="Confirm without being asked.")
@click.pass_context
@run_async
async def archive(ctx: click.Context, slug: str, yes: bool) -> None:
    """Close a commune for good (its data is kept; this cannot be undone)."""
    if not yes and not click.confirm(f"Archive {slug}? Its site closes for good", default=False):
        fail("not archived.")
    changed = await _change_status(settings_from(ctx), slug, CommuneStatus.ARCHIVED)
    out.print(f"Archived {slug}." if changed else f"{slug} was already archived: nothing changed.")


@tenants.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Report what would change and write nothing.")
@click.option("--create-only", is_flag=True, help="Create missing communes; leave existing ones as they are.")
@click.pass_context
@run_async
async def apply(ctx: click.Context, directory: Path | None, dry_run: bool, create_only: bool) -> None:
    """Make the database match the definitions in tenants/ (idempotent)."""
    settings = settings_from(ctx)
    reports = await apply_folder(
        settings, directory or settings.tenants_dir, dry_run=dry_run, create_only=create_only
    )
    print_reports(reports, dry_run=dry_run)


async def apply_folder(
    settings: Settings, directory: Path, *, dry_run: bool = False, create_only: bool = False
) -> list[Report]:
    try:
        definitions = load_definitions(directory, installed_modules=frozenset(registry.modules))
    except DefinitionError as error:
        fail("the definitions cannot be applied; nothing was changed:\n  " + "\n  ".join(error.problems))
    total = len(definitions.intercommunales) + len(definitions.tenants)
    with Progress(transient=True, console=out) as progress:
        task = progress.add_task(f"Applying {directory}", total=total)
        try:
            async with command_runtime(settings) as runtime:
                with acting_as(command_line_actor()), platform_scope(f"perron tenants apply {directory}"):
                    async with runtime.database.transaction() as session:
                        reports = await apply_definitions(
                            session,
                            definitions,
                            console_host=settings.console_host,
                            media=MediaStore.for_settings(settings),
                            create_only=create_only,
                            on_progress=lambda report: progress.update(
                                task, advance=1, description=report.name
                            ),
                        )
                        if dry_run:
                            raise _DryRun(reports)
                await _apply_modules(runtime, definitions, reports)
        except _DryRun as done:
            for report in done.reports:
                if report.name.startswith("commune "):
                    report.remarks.append("modules are not compared in a dry run")
            return done.reports
        except DefinitionError as error:
            fail("the definitions cannot be applied; nothing was changed:\n  " + "\n  ".join(error.problems))
    return reports


async def _apply_modules(runtime: Any, definitions: DefinitionSet, reports: list[Report]) -> None:
    """Each commune's modules, in that commune's own scope and transaction."""
    by_name = {report.name: report for report in reports}
    for _, tenant in definitions.tenants:
        if not tenant.modules:
            continue
        with acting_as(command_line_actor()), platform_scope("perron tenants apply: find the commune"):
            async with runtime.database.session() as session:
                commune_id = await session.scalar(select(Commune.id).where(Commune.slug == tenant.slug))
        if commune_id is None:
            continue
        with acting_as(command_line_actor()), tenant_scope(commune_id):
            async with runtime.database.transaction() as session:
                changes = await apply_modules(session, commune_id, tenant)
        report = by_name.get(f"commune {tenant.slug}")
        if report is not None and changes:
            report.changes.extend(changes)
            if report.outcome is Outcome.UNCHANGED:
                report.outcome = Outcome.UPDATED


class _DryRun(Exception):  # not an error: how a dry run rolls back
    def __init__(self, reports: list[Report]) -> None:
        self.reports = reports


def print_reports(reports: list[Report], *, dry_run: bool = False) -> None:
    verb = {
        Outcome.CREATED: "would create" if dry_run else "created",
        Outcome.UPDATED: "would update" if dry_run else "updated",
        Outcome.UNCHANGED: "unchanged",
    }
    for report in reports:
        details = "; ".join(report.changes + report.remarks)
        out.print(f"  {verb[report.outcome]:>12}  {report.name}{f'  ({details})' if details else ''}")
    counts = {outcome: sum(1 for r in reports if r.outcome is outcome) for outcome in Outcome}
    summary = ", ".join(f"{count} {verb[outcome]}" for outcome, count in counts.items() if count)
    out.print(f"{'Dry run, nothing written: ' if dry_run else ''}{summary or 'nothing to apply'}.")


# Archives: export, delete, import -------------------------------------------------------


@tenants.command("export")
@click.argument("slug")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Also write the archive to this file (it is always kept under <data dir>/exports).",
)
@click.pass_context
@run_async
async def export_(ctx: click.Context, slug: str, output: Path | None) -> None:
    """Write an archive of everything of one commune: its rows, one JSON file per table,
    and its files, with a manifest of checksums."""
    settings = settings_from(ctx)
    with using_language("en"), Progress(transient=True, console=out) as bar:
        task = bar.add_task(f"Exporting {slug}", total=None)

        async def progress(done: int, total: int | None, message: str) -> None:
            bar.update(task, completed=done, total=total, description=f"{slug}: {message}")

        async with command_runtime(settings) as runtime:
            with acting_as(command_line_actor()):
                export = await archives.export_commune(runtime.database, settings, slug, progress=progress)
    path = archives.export_path(settings, export)
    if output is not None:
        _copy_atomically(path, output)
    out.print(
        f"Exported {export.slug}: {export.rows} rows in {len(export.tables)} tables and "
        f"{export.media_files} media file(s), {export.size} bytes."
    )
    out.print(f"Archive: {path}")
    if output is not None:
        out.print(f"Copied to: {output}")
    out.print(f"SHA-256: {export.sha256}")


def _copy_atomically(source: Path, target: Path) -> None:
    target = target.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.partial")
    try:
        shutil.copyfile(source, temporary)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@tenants.command("exports")
@click.argument("slug", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
@run_async
async def exports_(ctx: click.Context, slug: str | None, as_json: bool) -> None:
    """List the archives made of the communes (of one commune, with its slug), newest first."""
    settings = settings_from(ctx)
    async with command_runtime(settings) as runtime:
        with acting_as(command_line_actor()), platform_scope("perron tenants exports"):
            async with runtime.database.session() as session:
                commune_id = None
                if slug is not None:
                    commune_id = await session.scalar(select(Commune.id).where(Commune.slug == slug))
                    if commune_id is None:
                        found = await archives.list_exports(session, limit=1000)
                        commune_id = next((e.commune_id for e in found if e.slug == slug), None)
                    if commune_id is None:
                        fail(f"no commune has the slug {slug!r}, and none with it was exported")
                exports = await archives.list_exports(session, commune_id=commune_id)
    rows = [
        {
            "id": str(export.id),
            "slug": export.slug,
            "created_at": export.created_at.isoformat(),
            "created_by": export.created_by,
            "file": str(archives.exports_folder(settings) / export.file_name),
            "size": export.size,
            "sha256": export.sha256,
            "rows": export.rows,
            "media_files": export.media_files,
        }
        for export in exports
    ]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    if not rows:
        out.print("No export yet. Make one with `perron tenants export <slug>`.")
        return
    table = Table("when (UTC)", "commune", "by", "rows", "media", "bytes", "file")
    for export in exports:
        table.add_row(
            export.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            export.slug,
            export.created_by,
            str(export.rows),
            str(export.media_files),
            str(export.size),
            export.file_name,
        )
    out.print(table)


@tenants.command("delete")
@click.argument("slug")
@click.option(
    "--confirm",
    "confirmation",
    required=True,
    metavar="NAME",
    help="The commune's name, exactly as written in one of its languages.",
)
@click.pass_context
@run_async
async def delete_(ctx: click.Context, slug: str, confirmation: str) -> None:
    """Delete a commune and everything it owns, for good. Refused unless an export holds
    its current content (`perron tenants export`) and --confirm gives its name."""
    settings = settings_from(ctx)
    with using_language("en"):
        async with command_runtime(settings) as runtime:
            with acting_as(command_line_actor()):
                report = await archives.delete_commune(
                    runtime.database, settings, slug, confirmation=confirmation
                )
    out.print(
        f"Deleted {report.slug}: {sum(report.rows.values())} rows and {report.media_files} media file(s)."
    )
    out.print(f"Its archive: {archives.exports_folder(settings) / report.export.file_name}")


@tenants.command("import")
@click.argument("path", metavar="ARCHIVE", type=click.Path(path_type=Path))
@click.option("--check", "check_only", is_flag=True, help="Check the archive and write nothing.")
@click.pass_context
@run_async
async def import_(ctx: click.Context, path: Path, check_only: bool) -> None:
    """Restore a commune from its archive into this deployment (which must not have it).
    The archive is checked in full first; a refused archive changes nothing."""
    settings = settings_from(ctx)
    with using_language("en"):
        async with command_runtime(settings) as runtime:
            with acting_as(command_line_actor()):
                checked = await archives.check_archive(runtime.database, settings, path)
                if not check_only:
                    report = await archives.import_commune(runtime.database, settings, path, checked=checked)
    for warning in checked.warnings:
        out.print(f"[yellow]Warning:[/] {warning}", markup=True)
    rows = sum(checked.rows.values())
    if check_only:
        out.print(
            f"The archive of {checked.slug} can be imported: {rows} rows, "
            f"{len(checked.manifest.media)} media file(s). Nothing was written."
        )
        return
    out.print(f"Imported {report.slug}: {rows} rows and {report.media_files} media file(s).")
