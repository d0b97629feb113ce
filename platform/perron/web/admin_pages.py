"""What the staff area's pages share: rendering, "see other" after a change, the page that
asks "are you sure?", and reading a form's text fields."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response

from perron.errors import Invalid
from perron.i18n import gettext

SiteRequest = Request[Any, Any, Any]

CONFIRMED = "yes"
BACK = "back"

_ISO_DAY = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_BELGIAN_DAY = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})$")


def page(request: SiteRequest, template: str, *, status_code: int = 200, **context: Any) -> Response[bytes]:
    from perron.modules.context import page as render  # the site application imports this module

    return render(request, template, status_code=status_code, **context)


def see_other(path: str, done: str, **extra: str) -> Response[bytes]:
    """See other: the page showing the result (reloading it does not send the form again)."""
    return Response(
        b"",
        status_code=303,
        headers={"location": f"{path}?{urlencode({'done': done, **extra})}", "cache-control": "no-store"},
    )


def notice(request: SiteRequest, notices: Mapping[str, str]) -> str | None:
    """The message for ``?done=...`` (a change just made), translated; None for anything else."""
    message = notices.get(request.query_params.get("done") or "")
    return gettext(message) if message else None


def form_text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def confirm_page(
    request: SiteRequest,
    *,
    title: str,
    lines: Sequence[str],
    action: str,
    fields: Sequence[tuple[str, str]],
    button: str,
    cancel: str,
    warning: str | None = None,
) -> Response[bytes]:
    """The page asking "are you sure?": the form's values travel in hidden fields; "go back"
    returns to the form with them."""
    return page(
        request,
        "perron/admin/staff_confirm.html",
        title=title,
        lines=lines,
        action=action,
        fields=fields,
        button=button,
        cancel=cancel,
        warning=warning,
    )


def parse_day(value: str, field: str) -> dt.date | None:
    """A day as date fields send it (2026-11-25), or as people type it where a browser shows a
    plain text box (25/11/2026, 25.11.2026, 25-11-2026); None when empty."""
    text = value.strip()
    if not text:
        return None
    iso, belgian = _ISO_DAY.match(text), _BELGIAN_DAY.match(text)
    try:
        if iso:
            return dt.date(int(iso[1]), int(iso[2]), int(iso[3]))
        if belgian:
            return dt.date(int(belgian[3]), int(belgian[2]), int(belgian[1]))
    except ValueError:
        raise Invalid(field, gettext("This day does not exist in the calendar: check the date.")) from None
    raise Invalid(field, gettext("Write the date as day/month/year, such as 25/11/2026."))
