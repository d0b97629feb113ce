"""The branding editor (``/admin/branding``, administrators): colours, font, tagline, home-page
introduction and sections, and the logo.

* Each colour has a colour picker and its hex code; the contrast of the three pairs a page
  shows is explained in words, with its ratio and the 4.5:1 target; a palette below it is
  refused and nothing changes.
* "Preview" shows the page again with the proposed colours in a preview panel and saves
  nothing: the panel's colours come from ``/admin/branding/preview.css?...``, a stylesheet
  built from the proposed values (validated) and scoped to the panel, since the
  Content-Security-Policy allows no inline style. With JavaScript, a static script makes the
  panel and the contrast check follow the inputs as they change (CSS custom properties set
  through the CSSOM).
* Saving goes through :func:`perron.tenancy.actions.update_branding`, and the logo through
  ``set_logo``/``remove_logo``: audited, and the site shows the change at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile

from perron.db.engine import Database
from perron.errors import Invalid
from perron.i18n import format_number, gettext, language_name, lazy
from perron.identity import roles
from perron.media import MediaStore
from perron.tenancy import actions
from perron.tenancy.branding import (
    AA_TEXT,
    FONT_STACKS,
    MAX_INTRO_LENGTH,
    MAX_LOGO_BYTES,
    MAX_LOGO_SIDE,
    MAX_TAGLINE_LENGTH,
    BrandingError,
    PairContrast,
    normalize_colour,
    pair_contrasts,
    stylesheet,
)
from perron.tenancy.models import DEFAULT_PALETTE, HOME_SECTIONS, FontChoice
from perron.tenancy.site import TenantSite
from perron.web.admin_pages import BACK, CONFIRMED, confirm_page, form_text, notice, page, see_other
from perron.web.auth import staff_guard
from perron.web.pages import READ_ONLY

SiteRequest = Request[Any, Any, Any]

BASE = "/admin/branding"
GUARDS = [staff_guard(roles.ADMIN)]
PREVIEW_SCOPE = ".branding-preview__page"
LOGO_UPLOAD_LIMIT = 4 * MAX_LOGO_BYTES
"""A form with a photo straight from a phone is refused with a clear message (it names the
file's size and the 2 MB limit), not cut off by the server's 1 MB request limit."""

COLOURS: Mapping[str, tuple[str, str, str]] = {
    "primary_color": (
        lazy("Main colour"),
        lazy("The background of the header and the menu."),
        "--perron-primary",
    ),
    "primary_text_color": (
        lazy("Text on the main colour"),
        lazy("The commune's name and the menu links in the header."),
        "--perron-on-primary",
    ),
    "accent_color": (
        lazy("Links and buttons"),
        lazy("Links, buttons and the outline around what the keyboard is on."),
        "--perron-accent",
    ),
    "background_color": (
        lazy("Page background"),
        lazy("Behind the text of every page."),
        "--perron-background",
    ),
    "text_color": (lazy("Body text"), lazy("The text of every page."), "--perron-text"),
}

PAIRS: Mapping[tuple[str, str], str] = {
    ("text_color", "background_color"): lazy("Body text on the page background"),
    ("primary_text_color", "primary_color"): lazy("Header text on the main colour"),
    ("accent_color", "background_color"): lazy("Links and buttons on the page background"),
}

FONTS: Mapping[FontChoice, tuple[str, str]] = {
    FontChoice.SYSTEM: (
        lazy("The device's own font"),
        lazy("The font people already read every day on their phone or computer. The fastest."),
    ),
    FontChoice.HUMANIST: (lazy("Humanist"), lazy("A warm, very legible font without serifs.")),
    FontChoice.SERIF: (lazy("Serif"), lazy("A classic font with serifs, like a printed page.")),
    FontChoice.ROUNDED: (lazy("Rounded"), lazy("A friendly font with rounded letters.")),
}

SECTIONS: Mapping[str, str] = {
    "intro": lazy("The tagline and the introduction text"),
    "services": lazy("The list of online services"),
    "widgets": lazy("Boxes from the modules, such as the latest news"),
    "contact": lazy("How to reach the town hall"),
}

NOTICES = {
    "saved": lazy("The branding is saved: the site shows it now."),
    "unchanged": lazy("Nothing was changed."),
    "logo-saved": lazy("The new logo is saved: the site and its app icons show it now."),
    "logo-removed": lazy("The logo is removed: the site shows the commune's name instead."),
}


def _site(request: SiteRequest) -> TenantSite:
    site: TenantSite = request.scope["state"]["site"]
    return site


def _database(request: SiteRequest) -> Database:
    database: Database = request.app.state.runtime.database
    return database


def _media(request: SiteRequest) -> MediaStore:
    return MediaStore.for_settings(request.app.state.runtime.settings)


# --- Reading the form ------------------------------------------------------------------------


@dataclass
class Proposal:
    """What the form holds: texts as typed, and the colours and font that are usable."""

    colours: dict[str, str]
    """As typed (what the form shows again)."""
    palette: dict[str, str]
    """Normalised; the saved colour where the typed one is not a colour."""
    font: str
    tagline: dict[str, str]
    intro: dict[str, str]
    sections: list[str]
    positions: dict[str, str]
    errors: dict[str, str]


def _typed_colour(form: Mapping[str, Any], key: str) -> str:
    """The colour a person chose: the hex code if they changed it, else the colour picker's
    (without JavaScript both come back; the script keeps them equal)."""
    typed = form_text(form, key)
    picked = form_text(form, f"{key}_picker")
    shown = form_text(form, f"{key}_shown")
    if picked and (not typed or typed.lower() == shown.lower()):
        return picked
    return typed


def _colour_problem(value: str) -> str:
    if not value:
        return gettext("Choose a colour.")
    return gettext(
        "“%(value)s” is not a colour code: write # followed by six digits or letters from a to f, "
        "such as #1f4e79."
    ) % {"value": value[:20]}


def contrast_message(pair: PairContrast) -> str:
    """Why a pair is too weak, in plain words, with its ratio and the target."""
    values = {
        "foreground": pair.foreground_colour,
        "background": pair.background_colour,
        "ratio": format_number(pair.shown_ratio, 2),
        "target": format_number(AA_TEXT, 1),
    }
    sentences = {
        ("text_color", "background_color"): gettext(
            "The body text (%(foreground)s) on the page background (%(background)s) has a contrast of "
            "%(ratio)s:1."
        ),
        ("primary_text_color", "primary_color"): gettext(
            "The text of the header (%(foreground)s) on the main colour (%(background)s) has a contrast "
            "of %(ratio)s:1."
        ),
        ("accent_color", "background_color"): gettext(
            "Links and buttons (%(foreground)s) on the page background (%(background)s) have a contrast "
            "of %(ratio)s:1."
        ),
    }
    sentence = sentences[pair.foreground, pair.background] % values
    target = (
        gettext(
            "Text needs at least %(target)s:1 to be readable by everyone, including people who see poorly "
            "(the WCAG 2.1 AA rule public sites must follow). Make one of the two colours darker or the "
            "other lighter."
        )
        % values
    )
    return f"{sentence} {target}"


def _proposal(form: Mapping[str, Any], site: TenantSite) -> Proposal:
    saved = site.branding.palette
    errors: dict[str, str] = {}
    colours: dict[str, str] = {}
    palette: dict[str, str] = {}
    for key in COLOURS:
        typed = _typed_colour(form, key)
        colours[key] = typed
        try:
            palette[key] = normalize_colour(key, typed)
        except BrandingError:
            errors[key] = _colour_problem(typed)
            palette[key] = saved[key]
    if not errors:
        for pair in pair_contrasts(palette):
            if not pair.passes:
                errors[f"contrast-{pair.foreground}"] = contrast_message(pair)
    font = form_text(form, "font")
    if font not in {choice.value for choice in FontChoice}:
        errors["font"] = gettext("Choose one of the fonts offered.")
        font = site.branding.font.value
    tagline = {code: form_text(form, f"tagline.{code}") for code in site.languages}
    intro = {code: _multiline(form, f"intro.{code}") for code in site.languages}
    for code, text in tagline.items():
        if len(text) > MAX_TAGLINE_LENGTH:
            errors[f"tagline.{code}"] = gettext(
                "%(language)s: the tagline has %(count)s characters; keep it to %(limit)s at most."
            ) % {"language": language_name(code), "count": len(text), "limit": MAX_TAGLINE_LENGTH}
    for code, text in intro.items():
        if len(text) > MAX_INTRO_LENGTH:
            errors[f"intro.{code}"] = gettext(
                "%(language)s: the introduction has %(count)s characters; keep it to %(limit)s at most."
            ) % {"language": language_name(code), "count": len(text), "limit": MAX_INTRO_LENGTH}
    positions = {section: form_text(form, f"position.{section}") for section in HOME_SECTIONS}
    shown = [section for section in HOME_SECTIONS if form_text(form, f"section.{section}") == "yes"]
    places = [str(number) for number in range(1, len(HOME_SECTIONS) + 1)]
    for section in shown:
        if positions[section] not in places:
            errors[f"position.{section}"] = gettext("Choose a place in the list.")
    sections = sorted(
        shown,
        key=lambda section: (
            int(positions[section]) if positions[section] in places else 99,
            HOME_SECTIONS.index(section),
        ),
    )
    if not shown:
        errors["sections"] = gettext("Choose at least one section for the home page.")
    return Proposal(colours, palette, font, tagline, intro, sections, positions, errors)


def _multiline(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.replace("\r\n", "\n").strip() if isinstance(value, str) else ""


def _saved_proposal(site: TenantSite) -> Proposal:
    branding = site.branding
    sections = list(branding.home_sections)
    positions = {section: str(sections.index(section) + 1) for section in sections}
    for section in HOME_SECTIONS:
        positions.setdefault(section, str(len(HOME_SECTIONS)))
    return Proposal(
        colours=dict(branding.palette),
        palette=dict(branding.palette),
        font=branding.font.value,
        tagline={code: branding.tagline.get(code, "") for code in site.languages},
        intro={code: branding.intro.get(code, "") for code in site.languages},
        sections=sections,
        positions=positions,
        errors={},
    )


# --- Pages -------------------------------------------------------------------------------------


def preview_url(palette: Mapping[str, str], font: str) -> str:
    return f"{BASE}/preview.css?{urlencode({**palette, 'font': font})}"


def _render(
    request: SiteRequest,
    proposal: Proposal,
    *,
    previewing: bool = False,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Response[bytes]:
    site = _site(request)
    language = request.scope["state"]["language"]
    shown_errors = {**proposal.errors, **(errors or {})}
    contrasts = [
        {
            "id": f"contrast-{pair.foreground}",
            "foreground": pair.foreground,
            "background": pair.background,
            "label": gettext(PAIRS[pair.foreground, pair.background]),
            "ratio": format_number(pair.shown_ratio, 2),
            "passes": pair.passes,
            "explanation": contrast_message(pair) if not pair.passes else "",
        }
        for pair in pair_contrasts(proposal.palette)
    ]
    branding = site.branding
    return page(
        request,
        "perron/admin/branding.html",
        status_code=status_code,
        colours=[
            {
                "key": key,
                "label": gettext(label),
                "help": gettext(help_text),
                "property": prop,
                "value": proposal.colours.get(key, ""),
                "picker": proposal.palette[key],
                "error": shown_errors.get(key),
            }
            for key, (label, help_text, prop) in COLOURS.items()
        ],
        contrasts=contrasts,
        target=format_number(AA_TEXT, 1),
        fonts=[
            {
                "value": choice.value,
                "label": gettext(label),
                "help": gettext(help_text),
                "stack": FONT_STACKS[choice],
            }
            for choice, (label, help_text) in FONTS.items()
        ],
        chosen_font=proposal.font,
        taglines=[
            (code, language_name(code), proposal.tagline.get(code, ""), shown_errors.get(f"tagline.{code}"))
            for code in site.languages
        ],
        intros=[
            (code, language_name(code), proposal.intro.get(code, ""), shown_errors.get(f"intro.{code}"))
            for code in site.languages
        ],
        preview_tagline=proposal.tagline.get(language) or next(iter(proposal.tagline.values()), ""),
        tagline_limit=MAX_TAGLINE_LENGTH,
        intro_limit=MAX_INTRO_LENGTH,
        sections=[
            {
                "key": section,
                "label": gettext(SECTIONS[section]),
                "shown": section in proposal.sections,
                "position": proposal.positions.get(section, ""),
                "error": shown_errors.get(f"position.{section}"),
            }
            for section in HOME_SECTIONS
        ],
        places=[str(number) for number in range(1, len(HOME_SECTIONS) + 1)],
        previewing=previewing,
        preview_css=preview_url(proposal.palette, proposal.font),
        errors=shown_errors,
        notice=notice(request, NOTICES),
        logo=branding.logo,
        logo_url=branding.logo_url,
        logo_limit_mb=MAX_LOGO_BYTES // (1024 * 1024),
        logo_max_side=MAX_LOGO_SIDE,
    )


@get(BASE, name="admin_branding", guards=GUARDS)
async def branding_page(request: SiteRequest) -> Response[bytes]:
    return _render(request, _saved_proposal(_site(request)))


@post(BASE, name="admin_branding_save", guards=GUARDS)
async def branding_save(request: SiteRequest) -> Response[bytes]:
    site = _site(request)
    form = await request.form()
    proposal = _proposal(form, site)
    if form_text(form, "intent") != "save":
        # A preview: the page again, with the proposed colours in the panel; nothing is saved.
        return _render(request, proposal, previewing=True, status_code=400 if proposal.errors else 200)
    if proposal.errors:
        return _render(request, proposal, status_code=400)
    branding = site.branding
    # Texts in a language the commune no longer offers are kept, not silently dropped.
    tagline = {**{k: v for k, v in branding.tagline.items() if k not in site.languages}, **proposal.tagline}
    intro = {**{k: v for k, v in branding.intro.items() if k not in site.languages}, **proposal.intro}
    try:
        async with _database(request).transaction() as session:
            changed = await actions.update_branding(
                session,
                site.id,
                palette=proposal.palette,
                font=proposal.font,
                tagline=tagline,
                intro=intro,
                home_sections=proposal.sections,
            )
    except Invalid as error:
        field = error.field if error.field != "home_sections" else "sections"
        return _render(request, proposal, errors={field: error.reason}, status_code=400)
    return see_other(BASE, "saved" if changed else "unchanged")


@get(f"{BASE}/preview.css", name="admin_branding_preview_css", guards=GUARDS, opt=READ_ONLY)
async def preview_css(request: SiteRequest) -> Response[str]:
    """The proposed colours and font as custom properties of the preview panel only."""
    site = _site(request)
    palette = dict(site.branding.palette)
    try:
        for key in DEFAULT_PALETTE:
            value = request.query_params.get(key)
            if value is not None:
                palette[key] = normalize_colour(key, value)
        font = FontChoice(request.query_params.get("font") or site.branding.font.value)
    except (BrandingError, ValueError):
        return Response(
            "/* not a colour or font this editor offers */\n",
            status_code=400,
            media_type="text/css",
            headers={"cache-control": "no-store"},
        )
    return Response(
        stylesheet(palette, font, selector=PREVIEW_SCOPE),
        media_type="text/css",
        # The answer depends only on the address; it is an administrator's page, kept privately.
        headers={"cache-control": "private, max-age=86400"},
    )


# --- Logo --------------------------------------------------------------------------------------


async def _uploaded(form: Any, name: str) -> tuple[bytes, str] | None:
    value = form.get(name)
    if not isinstance(value, UploadFile) or not value.filename:
        return None
    try:
        content = await value.read()
    finally:
        await value.close()
    return content, value.filename


@post(f"{BASE}/logo", name="admin_branding_logo", guards=GUARDS, request_max_body_size=LOGO_UPLOAD_LIMIT)
async def logo_upload(request: SiteRequest) -> Response[bytes]:
    site = _site(request)
    form = await request.form()
    try:
        uploaded = await _uploaded(form, "logo")
        if uploaded is None:
            raise Invalid("logo", gettext("Choose an image file first."))
        content, filename = uploaded
        async with _database(request).transaction() as session:
            changed = await actions.set_logo(session, site.id, content, filename, media=_media(request))
    except Invalid as error:
        return _render(request, _saved_proposal(site), errors={"logo": error.reason}, status_code=400)
    return see_other(BASE, "logo-saved" if changed else "unchanged")


@post(f"{BASE}/logo/remove", name="admin_branding_logo_remove", guards=GUARDS)
async def logo_remove(request: SiteRequest) -> Response[bytes]:
    site = _site(request)
    form = await request.form()
    confirm = form_text(form, "confirm")
    if confirm == BACK or site.branding.logo is None:
        return see_other(BASE, "unchanged")
    if confirm != CONFIRMED:
        return confirm_page(
            request,
            title=gettext("Remove the logo?"),
            lines=[
                gettext("The site shows the commune's name in its place."),
                gettext("The icons of the site (browser tab, phone home screen) show the commune's initial."),
                gettext("You can upload a logo again at any time."),
            ],
            action=f"{BASE}/logo/remove",
            fields=[],
            button=gettext("Yes, remove the logo"),
            cancel=gettext("No, keep it"),
        )
    async with _database(request).transaction() as session:
        changed = await actions.remove_logo(session, site.id, media=_media(request))
    return see_other(BASE, "logo-removed" if changed else "unchanged")


ROUTES = [branding_page, branding_save, preview_css, logo_upload, logo_remove]
