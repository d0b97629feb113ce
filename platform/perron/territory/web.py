"""Staff pages for the territory (``/admin/territory``): streets (one by one or from a CSV
file), neighbourhoods (names, an outline from a GeoJSON file, streets ticked in a list,
split and merge), zones, and the history of changes.

Only staff holding ``territory.editor`` (or ``admin``) reach them. Every page works without
JavaScript. A refused form comes back with what was typed, an error summary at the top and
each message next to its field; a file is never half-imported.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response.base import ASGIResponse
from sqlalchemy import func, select

from perron.audit import Actor, ActorKind, acting_as
from perron.db.engine import Database
from perron.db.repository import ensure_owned
from perron.errors import Invalid, NotFound
from perron.i18n import gettext, lazy, pick
from perron.sentinels import NOT_GIVEN
from perron.tenancy.site import TenantSite
from perron.territory import actions, service
from perron.territory.actions import ImportRefused, NewNeighbourhood
from perron.territory.geojson import MAX_BYTES
from perron.territory.matching import street_key
from perron.territory.models import Neighbourhood, Street, TerritoryChange, Zone
from perron.web.auth import current_user, staff_guard
from perron.web.pages import READ_ONLY

SiteRequest = Request[Any, Any, Any]
ROLE = "territory.editor"
GUARDS = [staff_guard(ROLE)]
UPLOAD_LIMIT = MAX_BYTES + 1024 * 1024
"""Largest form with a file: the GeoJSON or CSV limit, and room for the other fields."""
HISTORY_PAGE = 50
BASE = "/admin/territory"
TEMPLATES = "perron/admin/territory"

NOTICES = {
    "street-added": lazy("The street is added."),
    "street-saved": lazy("The street is saved."),
    "street-deleted": lazy("The street is deleted."),
    "streets-imported": lazy("The streets of the file are imported."),
    "nothing-new": lazy("Every street of the file was already there: nothing changed."),
    "neighbourhood-created": lazy("The neighbourhood is created."),
    "neighbourhood-saved": lazy("The neighbourhood is saved."),
    "neighbourhood-deleted": lazy("The neighbourhood is deleted."),
    "neighbourhood-split": lazy(
        "The neighbourhood is split; the former one is kept in the list as replaced."
    ),
    "neighbourhoods-merged": lazy("The neighbourhoods are merged; the former ones are kept as replaced."),
    "zone-created": lazy("The zone is created."),
    "zone-saved": lazy("The zone is saved."),
    "zone-deleted": lazy("The zone is deleted."),
    "unchanged": lazy("Nothing was changed."),
}

ACTIONS = {
    "street.create": lazy("Street added"),
    "street.update": lazy("Street changed"),
    "street.delete": lazy("Street deleted"),
    "streets.import": lazy("Streets imported"),
    "neighbourhood.create": lazy("Neighbourhood created"),
    "neighbourhood.update": lazy("Neighbourhood changed"),
    "neighbourhood.delete": lazy("Neighbourhood deleted"),
    "neighbourhood.split": lazy("Neighbourhood split"),
    "neighbourhood.merge": lazy("Neighbourhoods merged"),
    "zone.create": lazy("Zone created"),
    "zone.update": lazy("Zone changed"),
    "zone.delete": lazy("Zone deleted"),
}


# --- Helpers ---------------------------------------------------------------------------


def _site(request: SiteRequest) -> TenantSite:
    site: TenantSite = request.scope["state"]["site"]
    return site


def _database(request: SiteRequest) -> Database:
    database: Database = request.app.state.runtime.database
    return database


def _page(request: SiteRequest, template: str, *, status_code: int = 200, **context: Any) -> ASGIResponse:
    from perron.web.site import page  # the site module imports this one for its routes

    site = _site(request)
    return page(
        request,
        f"{TEMPLATES}/{template}",
        status_code=status_code,
        territory_languages=list(site.languages),
        **context,
    )


@contextmanager
def _as_staff(request: SiteRequest) -> Iterator[None]:
    """Changes made from these pages are the signed-in staff member's, in audit and history."""
    user = current_user(request)
    assert user is not None  # the guard let only staff in
    with acting_as(Actor(ActorKind.PERSON, user.display_name, user.account_id)):
        yield


def _redirect(path: str, done: str, **extra: object) -> ASGIResponse:
    """See other: the page that shows the result (a reload then does not send the form again)."""
    query = urlencode({"done": done, **{key: str(value) for key, value in extra.items()}})
    return ASGIResponse(status_code=303, headers={"location": f"{path}?{query}", "cache-control": "no-store"})


def _notice(request: SiteRequest) -> str | None:
    code = request.query_params.get("done")
    message = NOTICES.get(code or "")
    if message is None:
        return None
    text = gettext(message)
    if code == "streets-imported":
        count = request.query_params.get("count", "")
        present = request.query_params.get("present", "0")
        if count.isdigit():
            text += " " + gettext("%(count)s new street(s); %(present)s already there.") % {
                "count": count,
                "present": present if present.isdigit() else "0",
            }
    return text


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _names(form: Mapping[str, Any], prefix: str, languages: Sequence[str]) -> dict[str, str]:
    return {language: _text(form, f"{prefix}.{language}") for language in languages}


async def _file(form: Any, name: str) -> bytes | None:
    """An uploaded file's content, or None when no file was chosen."""
    value = form.get(name)
    if not isinstance(value, UploadFile) or not value.filename:
        return None
    content = await value.read()
    await value.close()
    if not content:
        raise Invalid(name, gettext("The file is empty."))
    return content


def _ids(form: Any, name: str) -> list[UUID]:
    found: list[UUID] = []
    for value in form.getall(name, []):
        try:
            found.append(UUID(str(value)))
        except ValueError:
            raise Invalid(name, gettext("The list of streets sent is damaged; reload the page.")) from None
    return found


def _number(form: Mapping[str, Any], name: str) -> float | None:
    text = _text(form, name).replace(",", ".")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise Invalid(name, gettext("Write a number, such as 5.0789.")) from None


def _field_errors(error: Invalid, rename: Mapping[str, str] | None = None) -> dict[str, str]:
    field = (rename or {}).get(error.field, error.field)
    return {field: error.reason}


def _initial(name: str) -> str:
    key = street_key(name)
    letter = key[:1].upper() if key else "#"
    return letter if letter.isalpha() else "#"


def _street_groups(
    index: service.TerritoryIndex, language: str, fallbacks: Sequence[str], chosen: set[UUID], own: set[UUID]
) -> list[dict[str, Any]]:
    """Streets as checkboxes, grouped by their first letter, each saying where it is listed."""
    listed_in: dict[UUID, service.NeighbourhoodInfo] = {}
    for neighbourhood in index.neighbourhoods.values():
        if neighbourhood.active and neighbourhood.id not in own:
            for street_id in neighbourhood.street_ids:
                listed_in[street_id] = neighbourhood
    groups: dict[str, list[dict[str, Any]]] = {}
    streets = sorted(
        index.streets.values(), key=lambda s: (street_key(s.name(language, fallbacks)), s.postcode)
    )
    for street in streets:
        label = street.name(language, fallbacks)
        elsewhere = listed_in.get(street.id)
        groups.setdefault(_initial(label), []).append(
            {
                "id": str(street.id),
                "label": label,
                "postcode": street.postcode,
                "checked": street.id in chosen,
                "elsewhere": elsewhere.name(language, fallbacks) if elsewhere else None,
            }
        )
    return [{"letter": letter, "streets": items} for letter, items in groups.items()]


# --- Overview ----------------------------------------------------------------------------


@get(BASE, name="territory_overview", guards=GUARDS)
async def overview(request: SiteRequest) -> ASGIResponse:
    site = _site(request)
    street_query = request.query_params.get("street", "")
    postcode_query = request.query_params.get("postcode", "")
    errors: dict[str, str] = {}
    placement = None
    async with _database(request).session() as session:
        index = await service.index(session)
        last = await session.scalar(
            select(TerritoryChange)
            .where(TerritoryChange.tenant_id == site.id)
            .order_by(TerritoryChange.version.desc())
            .limit(1)
        )
        if street_query or postcode_query:
            if not street_query:
                errors["street"] = gettext("Write the street.")
            if not postcode_query:
                errors["postcode"] = gettext("Write the postcode.")
            if not errors:
                placement = await service.locate_address(
                    session, street=street_query, postcode=postcode_query
                )
    active = [n for n in index.neighbourhoods.values() if n.active]
    unplaced = sum(1 for street_id in index.streets if street_id not in index.street_neighbourhood)
    return _page(
        request,
        "overview.html",
        status_code=400 if errors else 200,
        index=index,
        counts={
            "streets": len(index.streets),
            "neighbourhoods": len(active),
            "zones": len(index.zones),
            "unplaced": unplaced,
            "without_point": sum(1 for street in index.streets.values() if not street.has_point),
        },
        last=last,
        last_label=gettext(ACTIONS.get(last.action, last.action)) if last else "",
        query={"street": street_query, "postcode": postcode_query},
        placement=placement,
        errors=errors,
        fallbacks=list(site.languages),
    )


# --- Streets -----------------------------------------------------------------------------


async def _streets_page(
    request: SiteRequest,
    *,
    errors: Mapping[str, str] | None = None,
    submitted: Mapping[str, Any] | None = None,
    problems: Sequence[actions.RowProblem] = (),
) -> ASGIResponse:
    site = _site(request)
    language = request.scope["state"]["language"]
    async with _database(request).session() as session:
        index = await service.index(session)
    rows = []
    for street in sorted(
        index.streets.values(), key=lambda s: (street_key(s.name(language, site.languages)), s.postcode)
    ):
        placed = index.street_neighbourhood.get(street.id)
        rows.append(
            {
                "id": street.id,
                "label": street.name(language, site.languages),
                "names": street.names,
                "postcode": street.postcode,
                "has_point": street.has_point,
                "neighbourhood": index.neighbourhoods[placed].name(language, site.languages)
                if placed
                else None,
            }
        )
    return _page(
        request,
        "streets.html",
        status_code=400 if errors or problems else 200,
        streets=rows,
        errors=dict(errors or {}),
        submitted=submitted or {},
        problems=problems,
        notice=_notice(request),
        csv_limit_mb=actions.MAX_CSV_BYTES // 1048576,
    )


@get(f"{BASE}/streets", name="territory_streets", guards=GUARDS)
async def streets(request: SiteRequest) -> ASGIResponse:
    return await _streets_page(request)


@post(f"{BASE}/streets", name="territory_street_add", guards=GUARDS)
async def street_add(request: SiteRequest) -> ASGIResponse:
    site = _site(request)
    form = await request.form()
    try:
        lon, lat = _number(form, "lon"), _number(form, "lat")
        with _as_staff(request):
            async with _database(request).transaction() as session:
                await actions.create_street(
                    session,
                    site.id,
                    names=_names(form, "names", site.languages),
                    postcode=_text(form, "postcode"),
                    lon=lon,
                    lat=lat,
                )
    except Invalid as error:
        return await _streets_page(
            request, errors=_field_errors(error, {"point": "lon"}), submitted=dict(form.items())
        )
    return _redirect(f"{BASE}/streets", "street-added")


@post(
    f"{BASE}/streets/import",
    name="territory_streets_import",
    guards=GUARDS,
    request_max_body_size=UPLOAD_LIMIT,
)
async def streets_import(request: SiteRequest) -> ASGIResponse:
    site = _site(request)
    form = await request.form()
    try:
        content = await _file(form, "file")
        if content is None:
            raise Invalid("file", gettext("Choose a CSV file of streets."))
        with _as_staff(request):
            async with _database(request).transaction() as session:
                report = await actions.import_streets(session, site.id, content)
    except ImportRefused as refused:
        return await _streets_page(
            request,
            errors={
                "file": gettext("Nothing was imported: correct the lines below and send the file again.")
            },
            problems=refused.problems,
        )
    except Invalid as error:
        return await _streets_page(request, errors={"file": error.reason})
    if not report.created:
        return _redirect(f"{BASE}/streets", "nothing-new")
    return _redirect(
        f"{BASE}/streets", "streets-imported", count=len(report.created), present=len(report.already_present)
    )


async def _street_or_404(request: SiteRequest, street_id: UUID) -> Street:
    async with _database(request).session() as session:
        street = await session.scalar(
            select(Street).where(Street.tenant_id == _site(request).id, Street.id == street_id)
        )
    if street is None:
        raise NotFoundException()
    return ensure_owned(street)


async def _street_page(
    request: SiteRequest,
    street: Street,
    *,
    errors: Mapping[str, str] | None = None,
    submitted: Mapping[str, Any] | None = None,
) -> ASGIResponse:
    return _page(
        request,
        "street.html",
        status_code=400 if errors else 200,
        street=street,
        errors=dict(errors or {}),
        submitted=submitted
        or {
            **{f"names.{code}": text for code, text in street.names.items()},
            "postcode": street.postcode,
            "lon": "" if street.lon is None else f"{street.lon:.6f}",
            "lat": "" if street.lat is None else f"{street.lat:.6f}",
        },
        notice=_notice(request),
    )


@get(f"{BASE}/streets/{{street_id:uuid}}", name="territory_street", guards=GUARDS)
async def street_edit(request: SiteRequest, street_id: FromPath[UUID]) -> ASGIResponse:
    return await _street_page(request, await _street_or_404(request, street_id))


@post(f"{BASE}/streets/{{street_id:uuid}}", name="territory_street_save", guards=GUARDS)
async def street_save(request: SiteRequest, street_id: FromPath[UUID]) -> ASGIResponse:
    site = _site(request)
    street = await _street_or_404(request, street_id)
    form = await request.form()
    try:
        point = (_number(form, "lon"), _number(form, "lat"))
        with _as_staff(request):
            async with _database(request).transaction() as session:
                changed = await actions.update_street(
                    session,
                    site.id,
                    street.id,
                    names=_names(form, "names", site.languages),
                    postcode=_text(form, "postcode"),
                    point=point,
                )
    except Invalid as error:
        return await _street_page(
            request, street, errors=_field_errors(error, {"point": "lon"}), submitted=dict(form.items())
        )
    return _redirect(f"{BASE}/streets", "street-saved" if changed else "unchanged")


@post(f"{BASE}/streets/{{street_id:uuid}}/delete", name="territory_street_delete", guards=GUARDS)
async def street_delete(request: SiteRequest, street_id: FromPath[UUID]) -> ASGIResponse:
    site = _site(request)
    try:
        with _as_staff(request):
            async with _database(request).transaction() as session:
                await actions.delete_street(session, site.id, street_id)
    except NotFound:
        raise NotFoundException() from None
    return _redirect(f"{BASE}/streets", "street-deleted")


# --- Neighbourhoods ----------------------------------------------------------------------


@get(f"{BASE}/neighbourhoods", name="territory_neighbourhoods", guards=GUARDS)
async def neighbourhoods(request: SiteRequest) -> ASGIResponse:
    site = _site(request)
    language = request.scope["state"]["language"]
    async with _database(request).session() as session:
        index = await service.index(session)
    placed: dict[UUID, int] = {}
    for neighbourhood_id in index.street_neighbourhood.values():
        placed[neighbourhood_id] = placed.get(neighbourhood_id, 0) + 1
    rows = []
    for neighbourhood in sorted(
        index.neighbourhoods.values(), key=lambda n: street_key(n.name(language, site.languages))
    ):
        rows.append(
            {
                "id": neighbourhood.id,
                "label": neighbourhood.name(language, site.languages),
                "active": neighbourhood.active,
                "outline": neighbourhood.has_outline,
                "listed": len(neighbourhood.street_ids),
                "streets": placed.get(neighbourhood.id, 0),
                "replaced_by": [
                    index.neighbourhoods[other].name(language, site.languages)
                    for other in neighbourhood.replaced_by
                    if other in index.neighbourhoods
                ],
            }
        )
    return _page(
        request,
        "neighbourhoods.html",
        current=[row for row in rows if row["active"] or not row["replaced_by"]],
        replaced=[row for row in rows if not row["active"] and row["replaced_by"]],
        can_merge=sum(1 for row in rows if row["active"]) >= 2,
        notice=_notice(request),
    )


async def _neighbourhood_page(
    request: SiteRequest,
    neighbourhood: Neighbourhood | None,
    *,
    errors: Mapping[str, str] | None = None,
    submitted: Mapping[str, Any] | None = None,
    chosen: set[UUID] | None = None,
) -> ASGIResponse:
    site = _site(request)
    language = request.scope["state"]["language"]
    async with _database(request).session() as session:
        index = await service.index(session)
    own = {neighbourhood.id} if neighbourhood else set()
    if chosen is None:
        info = index.neighbourhoods.get(neighbourhood.id) if neighbourhood else None
        chosen = set(info.street_ids) if info else set()
    if submitted is None:
        submitted = {
            f"names.{code}": text for code, text in (neighbourhood.names if neighbourhood else {}).items()
        }
        submitted["active"] = "on" if neighbourhood is None or neighbourhood.active else ""
    return _page(
        request,
        "neighbourhood_form.html",
        status_code=400 if errors else 200,
        neighbourhood=neighbourhood,
        groups=_street_groups(index, language, site.languages, chosen, own),
        errors=dict(errors or {}),
        submitted=submitted,
        notice=_notice(request),
        geojson_limit_mb=MAX_BYTES // 1048576,
    )


async def _neighbourhood_or_404(request: SiteRequest, neighbourhood_id: UUID) -> Neighbourhood:
    async with _database(request).session() as session:
        found = await session.scalar(
            select(Neighbourhood).where(
                Neighbourhood.tenant_id == _site(request).id, Neighbourhood.id == neighbourhood_id
            )
        )
    if found is None:
        raise NotFoundException()
    return ensure_owned(found)


@get(f"{BASE}/neighbourhoods/new", name="territory_neighbourhood_new", guards=GUARDS)
async def neighbourhood_new(request: SiteRequest) -> ASGIResponse:
    return await _neighbourhood_page(request, None)


@post(
    f"{BASE}/neighbourhoods/new",
    name="territory_neighbourhood_create",
    guards=GUARDS,
    request_max_body_size=UPLOAD_LIMIT,
)
async def neighbourhood_create(request: SiteRequest) -> ASGIResponse:
    site = _site(request)
    form = await request.form()
    submitted = {key: value for key, value in form.items() if isinstance(value, str)}
    chosen: set[UUID] = set()
    try:
        chosen = set(_ids(form, "streets"))
        outline = await _file(form, "geometry")
        with _as_staff(request):
            async with _database(request).transaction() as session:
                await actions.create_neighbourhood(
                    session,
                    site.id,
                    names=_names(form, "names", site.languages),
                    geometry=outline,
                    street_ids=sorted(chosen, key=str),
                    active=bool(_text(form, "active")),
                )
    except Invalid as error:
        return await _neighbourhood_page(
            request, None, errors=_field_errors(error), submitted=submitted, chosen=chosen
        )
    return _redirect(f"{BASE}/neighbourhoods", "neighbourhood-created")


@get(f"{BASE}/neighbourhoods/{{neighbourhood_id:uuid}}", name="territory_neighbourhood", guards=GUARDS)
async def neighbourhood_edit(request: SiteRequest, neighbourhood_id: FromPath[UUID]) -> ASGIResponse:
    return await _neighbourhood_page(request, await _neighbourhood_or_404(request, neighbourhood_id))


@post(
    f"{BASE}/neighbourhoods/{{neighbourhood_id:uuid}}",
    name="territory_neighbourhood_save",
    guards=GUARDS,
    request_max_body_size=UPLOAD_LIMIT,
)
async def neighbourhood_save(request: SiteRequest, neighbourhood_id: FromPath[UUID]) -> ASGIResponse:
    site = _site(request)
    neighbourhood = await _neighbourhood_or_404(request, neighbourhood_id)
    form = await request.form()
    submitted = {key: value for key, value in form.items() if isinstance(value, str)}
    chosen: set[UUID] = set()
    try:
        chosen = set(_ids(form, "streets"))
        outline = await _file(form, "geometry")
        geometry: Any = NOT_GIVEN
        if outline is not None:
            geometry = outline
        elif _text(form, "remove_outline"):
            geometry = None
        with _as_staff(request):
            async with _database(request).transaction() as session:
                changed = await actions.update_neighbourhood(
                    session,
                    site.id,
                    neighbourhood.id,
                    names=_names(form, "names", site.languages),
                    geometry=geometry,
                    street_ids=sorted(chosen, key=str),
                    active=bool(_text(form, "active")),
                )
    except Invalid as error:
        return await _neighbourhood_page(
            request, neighbourhood, errors=_field_errors(error), submitted=submitted, chosen=chosen
        )
    return _redirect(f"{BASE}/neighbourhoods", "neighbourhood-saved" if changed else "unchanged")


def _geojson_download(geometry: Mapping[str, Any], names: Mapping[str, str], slug: str) -> Response[Any]:
    """The outline as a GeoJSON Feature. Shown inline (as JSON) when opened; the page's link
    carries ``download`` so that a click saves it under this file name."""
    name = street_key(pick(names)).replace(" ", "-") or "outline"
    return Response(
        {"type": "Feature", "properties": {"names": dict(names)}, "geometry": dict(geometry)},
        media_type="application/json",
        headers={"content-disposition": f'inline; filename="{slug}-{name}.geojson"'},
    )


@get(
    f"{BASE}/neighbourhoods/{{neighbourhood_id:uuid}}/outline.geojson",
    name="territory_neighbourhood_outline",
    guards=GUARDS,
    opt=READ_ONLY,
)
async def neighbourhood_outline(request: SiteRequest, neighbourhood_id: FromPath[UUID]) -> Response[Any]:
    neighbourhood = await _neighbourhood_or_404(request, neighbourhood_id)
    if neighbourhood.geometry is None:
        raise NotFoundException()
    return _geojson_download(neighbourhood.geometry, neighbourhood.names, _site(request).slug)


async def _split_page(
    request: SiteRequest,
    neighbourhood: Neighbourhood,
    *,
    errors: Mapping[str, str] | None = None,
    submitted: Mapping[str, Any] | None = None,
    chosen: Mapping[int, set[UUID]] | None = None,
) -> ASGIResponse:
    site = _site(request)
    language = request.scope["state"]["language"]
    async with _database(request).session() as session:
        index = await service.index(session)
    info = index.neighbourhoods.get(neighbourhood.id)
    own = info.street_ids if info else frozenset()
    streets = sorted(
        (index.streets[street_id] for street_id in own if street_id in index.streets),
        key=lambda s: street_key(s.name(language, site.languages)),
    )
    picked = chosen or {}
    parts = []
    for number in (1, 2):
        groups: dict[str, list[dict[str, Any]]] = {}
        for street in streets:
            label = street.name(language, site.languages)
            groups.setdefault(_initial(label), []).append(
                {
                    "id": str(street.id),
                    "label": label,
                    "postcode": street.postcode,
                    "checked": street.id in picked.get(number, set()),
                    "elsewhere": None,
                }
            )
        parts.append(
            {"number": number, "groups": [{"letter": key, "streets": items} for key, items in groups.items()]}
        )
    return _page(
        request,
        "split.html",
        status_code=400 if errors else 200,
        neighbourhood=neighbourhood,
        label=pick(neighbourhood.names, language, site.languages),
        parts=parts,
        has_streets=bool(streets),
        errors=dict(errors or {}),
        submitted=submitted or {},
        geojson_limit_mb=MAX_BYTES // 1048576,
    )


@get(f"{BASE}/neighbourhoods/{{neighbourhood_id:uuid}}/split", name="territory_split", guards=GUARDS)
async def split_form(request: SiteRequest, neighbourhood_id: FromPath[UUID]) -> ASGIResponse:
    neighbourhood = await _neighbourhood_or_404(request, neighbourhood_id)
    if not neighbourhood.active:
        raise NotFoundException()
    return await _split_page(request, neighbourhood)


@post(
    f"{BASE}/neighbourhoods/{{neighbourhood_id:uuid}}/split",
    name="territory_split_save",
    guards=GUARDS,
    request_max_body_size=2 * UPLOAD_LIMIT,
)
async def split_save(request: SiteRequest, neighbourhood_id: FromPath[UUID]) -> ASGIResponse:
    site = _site(request)
    neighbourhood = await _neighbourhood_or_404(request, neighbourhood_id)
    form = await request.form()
    submitted = {key: value for key, value in form.items() if isinstance(value, str)}
    chosen: dict[int, set[UUID]] = {}
    try:
        parts = []
        for number in (1, 2):
            prefix = f"part{number}"
            chosen[number] = set(_ids(form, f"{prefix}.streets"))
            parts.append(
                NewNeighbourhood(
                    names=_names(form, f"{prefix}.names", site.languages),
                    geometry=await _file(form, f"{prefix}.geometry"),
                    street_ids=sorted(chosen[number], key=str),
                )
            )
        with _as_staff(request):
            async with _database(request).transaction() as session:
                await actions.split_neighbourhood(session, site.id, neighbourhood.id, parts)
    except Invalid as error:
        return await _split_page(
            request, neighbourhood, errors=_field_errors(error), submitted=submitted, chosen=chosen
        )
    return _redirect(f"{BASE}/neighbourhoods", "neighbourhood-split")


async def _merge_page(
    request: SiteRequest,
    *,
    errors: Mapping[str, str] | None = None,
    submitted: Mapping[str, Any] | None = None,
) -> ASGIResponse:
    site = _site(request)
    language = request.scope["state"]["language"]
    async with _database(request).session() as session:
        found = await service.neighbourhoods(session)
    choices = [(str(n.id), n.name(language, site.languages)) for n in found]
    return _page(
        request,
        "merge.html",
        status_code=400 if errors else 200,
        choices=choices,
        errors=dict(errors or {}),
        submitted=submitted or {},
    )


@get(f"{BASE}/neighbourhoods/merge", name="territory_merge", guards=GUARDS)
async def merge_form(request: SiteRequest) -> ASGIResponse:
    return await _merge_page(request)


@post(f"{BASE}/neighbourhoods/merge", name="territory_merge_save", guards=GUARDS)
async def merge_save(request: SiteRequest) -> ASGIResponse:
    site = _site(request)
    form = await request.form()
    submitted = {key: value for key, value in form.items() if isinstance(value, str)}
    try:
        chosen = []
        for name in ("first", "second"):
            try:
                chosen.append(UUID(_text(form, name)))
            except ValueError:
                raise Invalid(name, gettext("Choose a neighbourhood.")) from None
        with _as_staff(request):
            async with _database(request).transaction() as session:
                await actions.merge_neighbourhoods(
                    session, site.id, chosen, names=_names(form, "names", site.languages)
                )
    except NotFound:
        return await _merge_page(
            request, errors={"first": gettext("Choose a neighbourhood.")}, submitted=submitted
        )
    except Invalid as error:
        return await _merge_page(
            request, errors=_field_errors(error, {"neighbourhoods": "second"}), submitted=submitted
        )
    return _redirect(f"{BASE}/neighbourhoods", "neighbourhoods-merged")


@get(
    f"{BASE}/neighbourhoods/{{neighbourhood_id:uuid}}/delete",
    name="territory_neighbourhood_delete_confirm",
    guards=GUARDS,
)
async def neighbourhood_delete_confirm(
    request: SiteRequest, neighbourhood_id: FromPath[UUID]
) -> ASGIResponse:
    neighbourhood = await _neighbourhood_or_404(request, neighbourhood_id)
    return _page(
        request,
        "confirm_delete.html",
        title=gettext("Delete the neighbourhood %(name)s?") % {"name": pick(neighbourhood.names)},
        explanation=gettext(
            "Modules that group people by neighbourhood (forums, notifications) lose this group. To "
            "redraw neighbourhoods, split or merge them instead: members then follow."
        ),
        action=f"{BASE}/neighbourhoods/{neighbourhood.id}/delete",
        cancel=f"{BASE}/neighbourhoods/{neighbourhood.id}",
    )


@post(
    f"{BASE}/neighbourhoods/{{neighbourhood_id:uuid}}/delete",
    name="territory_neighbourhood_delete",
    guards=GUARDS,
)
async def neighbourhood_delete(request: SiteRequest, neighbourhood_id: FromPath[UUID]) -> ASGIResponse:
    site = _site(request)
    try:
        with _as_staff(request):
            async with _database(request).transaction() as session:
                await actions.delete_neighbourhood(session, site.id, neighbourhood_id)
    except NotFound:
        raise NotFoundException() from None
    return _redirect(f"{BASE}/neighbourhoods", "neighbourhood-deleted")


# --- Zones -------------------------------------------------------------------------------


@get(f"{BASE}/zones", name="territory_zones", guards=GUARDS)
async def zones(request: SiteRequest) -> ASGIResponse:
    site = _site(request)
    language = request.scope["state"]["language"]
    async with _database(request).session() as session:
        rows = list(await session.scalars(select(Zone).where(Zone.tenant_id == site.id).order_by(Zone.key)))
    return _page(
        request,
        "zones.html",
        zones=[{"id": z.id, "key": z.key, "label": pick(z.names, language, site.languages)} for z in rows],
        notice=_notice(request),
    )


async def _zone_page(
    request: SiteRequest,
    zone: Zone | None,
    *,
    errors: Mapping[str, str] | None = None,
    submitted: Mapping[str, Any] | None = None,
) -> ASGIResponse:
    if submitted is None:
        submitted = {f"names.{code}": text for code, text in (zone.names if zone else {}).items()}
        if zone:
            submitted["key"] = zone.key
    return _page(
        request,
        "zone_form.html",
        status_code=400 if errors else 200,
        zone=zone,
        errors=dict(errors or {}),
        submitted=submitted,
        geojson_limit_mb=MAX_BYTES // 1048576,
    )


async def _zone_or_404(request: SiteRequest, zone_id: UUID) -> Zone:
    async with _database(request).session() as session:
        found = await session.scalar(
            select(Zone).where(Zone.tenant_id == _site(request).id, Zone.id == zone_id)
        )
    if found is None:
        raise NotFoundException()
    return ensure_owned(found)


@get(f"{BASE}/zones/new", name="territory_zone_new", guards=GUARDS)
async def zone_new(request: SiteRequest) -> ASGIResponse:
    return await _zone_page(request, None)


@post(f"{BASE}/zones/new", name="territory_zone_create", guards=GUARDS, request_max_body_size=UPLOAD_LIMIT)
async def zone_create(request: SiteRequest) -> ASGIResponse:
    site = _site(request)
    form = await request.form()
    submitted = {key: value for key, value in form.items() if isinstance(value, str)}
    try:
        key = actions.check_zone_key(_text(form, "key"))
        outline = await _file(form, "geometry")
        if outline is None:
            raise Invalid("geometry", gettext("Choose the GeoJSON file with the zone's outline."))
        with _as_staff(request):
            async with _database(request).transaction() as session:
                await actions.create_zone(
                    session, site.id, key=key, names=_names(form, "names", site.languages), geometry=outline
                )
    except Invalid as error:
        return await _zone_page(request, None, errors=_field_errors(error), submitted=submitted)
    return _redirect(f"{BASE}/zones", "zone-created")


@get(f"{BASE}/zones/{{zone_id:uuid}}", name="territory_zone", guards=GUARDS)
async def zone_edit(request: SiteRequest, zone_id: FromPath[UUID]) -> ASGIResponse:
    return await _zone_page(request, await _zone_or_404(request, zone_id))


@post(
    f"{BASE}/zones/{{zone_id:uuid}}",
    name="territory_zone_save",
    guards=GUARDS,
    request_max_body_size=UPLOAD_LIMIT,
)
async def zone_save(request: SiteRequest, zone_id: FromPath[UUID]) -> ASGIResponse:
    site = _site(request)
    zone = await _zone_or_404(request, zone_id)
    form = await request.form()
    submitted = {key: value for key, value in form.items() if isinstance(value, str)}
    try:
        outline = await _file(form, "geometry")
        with _as_staff(request):
            async with _database(request).transaction() as session:
                changed = await actions.update_zone(
                    session,
                    site.id,
                    zone.id,
                    names=_names(form, "names", site.languages),
                    geometry=outline if outline is not None else NOT_GIVEN,
                )
    except Invalid as error:
        submitted["key"] = zone.key
        return await _zone_page(request, zone, errors=_field_errors(error), submitted=submitted)
    return _redirect(f"{BASE}/zones", "zone-saved" if changed else "unchanged")


@get(
    f"{BASE}/zones/{{zone_id:uuid}}/outline.geojson",
    name="territory_zone_outline",
    guards=GUARDS,
    opt=READ_ONLY,
)
async def zone_outline(request: SiteRequest, zone_id: FromPath[UUID]) -> Response[Any]:
    zone = await _zone_or_404(request, zone_id)
    return _geojson_download(zone.geometry, zone.names, _site(request).slug)


@get(f"{BASE}/zones/{{zone_id:uuid}}/delete", name="territory_zone_delete_confirm", guards=GUARDS)
async def zone_delete_confirm(request: SiteRequest, zone_id: FromPath[UUID]) -> ASGIResponse:
    zone = await _zone_or_404(request, zone_id)
    return _page(
        request,
        "confirm_delete.html",
        title=gettext("Delete the zone %(name)s?") % {"name": pick(zone.names)},
        explanation=gettext(
            "Modules that ask about the zone “%(key)s” will find it no longer exists: nothing will be "
            "inside it."
        )
        % {"key": zone.key},
        action=f"{BASE}/zones/{zone.id}/delete",
        cancel=f"{BASE}/zones/{zone.id}",
    )


@post(f"{BASE}/zones/{{zone_id:uuid}}/delete", name="territory_zone_delete", guards=GUARDS)
async def zone_delete(request: SiteRequest, zone_id: FromPath[UUID]) -> ASGIResponse:
    site = _site(request)
    try:
        with _as_staff(request):
            async with _database(request).transaction() as session:
                await actions.delete_zone(session, site.id, zone_id)
    except NotFound:
        raise NotFoundException() from None
    return _redirect(f"{BASE}/zones", "zone-deleted")


# --- History -----------------------------------------------------------------------------


def _describe(change: TerritoryChange, language: str, fallbacks: Sequence[str]) -> str:
    summary = change.summary or {}
    names = summary.get("names")
    label = pick(names, language, fallbacks) if isinstance(names, Mapping) else ""
    if change.action == "streets.import":
        return gettext("%(count)s street(s)") % {"count": summary.get("count", 0)}
    if change.action == "neighbourhood.split":
        parts = [
            pick(part, language, fallbacks) for part in summary.get("into", []) if isinstance(part, Mapping)
        ]
        return gettext("%(name)s into %(parts)s") % {"name": label, "parts": ", ".join(parts)}
    if change.action == "neighbourhood.merge":
        parts = [
            pick(part, language, fallbacks) for part in summary.get("from", []) if isinstance(part, Mapping)
        ]
        return gettext("%(parts)s into %(name)s") % {"name": label, "parts": ", ".join(parts)}
    if change.action == "street.update" and isinstance(summary.get("before"), Mapping):
        before = pick(summary["before"], language, fallbacks)
        if before != label:
            return gettext("%(before)s, now %(name)s") % {"before": before, "name": label}
    if change.kind == "zones" and summary.get("key"):
        return f"{label} ({summary['key']})"
    return label


@get(f"{BASE}/history", name="territory_history", guards=GUARDS)
async def history(request: SiteRequest) -> ASGIResponse:
    site = _site(request)
    language = request.scope["state"]["language"]
    page_text = request.query_params.get("page", "1")
    page_number = int(page_text) if page_text.isdigit() and 0 < int(page_text) < 100_000 else 1
    async with _database(request).session() as session:
        total = (
            await session.scalar(
                select(func.count()).select_from(TerritoryChange).where(TerritoryChange.tenant_id == site.id)
            )
            or 0
        )
        changes = list(
            await session.scalars(
                select(TerritoryChange)
                .where(TerritoryChange.tenant_id == site.id)
                .order_by(TerritoryChange.version.desc())
                .offset((page_number - 1) * HISTORY_PAGE)
                .limit(HISTORY_PAGE)
            )
        )
    rows = [
        {
            "version": change.version,
            "when": change.occurred_at,
            "who": change.actor_label,
            "what": gettext(ACTIONS.get(change.action, change.action)),
            "detail": _describe(change, language, site.languages),
        }
        for change in changes
    ]
    pages = max(1, -(-total // HISTORY_PAGE))
    return _page(
        request,
        "history.html",
        rows=rows,
        page_number=page_number,
        pages=pages,
    )


ROUTES: list[Any] = [
    overview,
    streets,
    street_add,
    streets_import,
    street_edit,
    street_save,
    street_delete,
    neighbourhoods,
    neighbourhood_new,
    neighbourhood_create,
    merge_form,
    merge_save,
    neighbourhood_edit,
    neighbourhood_save,
    neighbourhood_outline,
    split_form,
    split_save,
    neighbourhood_delete_confirm,
    neighbourhood_delete,
    zones,
    zone_new,
    zone_create,
    zone_edit,
    zone_save,
    zone_outline,
    zone_delete_confirm,
    zone_delete,
    history,
]
