"""Turning a template into an e-mail: both parts rendered in the recipient's language, in the
commune's branding, and the MIME message the transport sends.

E-mail clients ignore stylesheets and strip ``<style>``: the layout
(``perron/email/base.html``) puts every colour inline, taken from the commune's palette.
Each e-mail template comes in two files, ``<name>.html`` and ``<name>.txt``, rendered with
the same context; the plain-text one turns autoescaping off itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from perron.config import Settings
from perron.db.base import utcnow
from perron.mail.models import OutgoingEmail
from perron.tenancy.branding import FONT_STACKS
from perron.tenancy.site import TenantSite
from perron.web.templating import Templates

SUBJECT_LENGTH = 300


@dataclass(frozen=True)
class Rendered:
    html: str
    text: str


def site_url(settings: Settings, site: TenantSite, path: str = "/") -> str:
    """An absolute address on the commune's site, as links in e-mails need them."""
    if path.startswith(("https://", "http://")):
        return path
    scheme = "https" if settings.env == "production" else "http"
    port = settings.public_port
    suffix = f":{port}" if port and port not in (80, 443) else ""
    host = site.primary_host or f"{site.slug}.localhost"
    return f"{scheme}://{host}{suffix}/{path.lstrip('/')}"


def paragraphs(text: str) -> list[list[str]]:
    """Plain text as paragraphs of lines (blank lines separate paragraphs), for templates
    that show a person's text in HTML without ever treating it as markup."""
    blocks: list[list[str]] = []
    current: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.strip():
            current.append(line.rstrip())
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def one_line(text: str, limit: int = SUBJECT_LENGTH) -> str:
    """A header value: one line (no header injection), at most ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def layout_context(settings: Settings, site: TenantSite, language: str) -> dict[str, Any]:
    """What ``perron/email/base.html`` needs: the commune, its colours, its address."""
    logo = site.branding.logo_url
    return {
        "site": site,
        "site_name": site.name(language),
        "language": language,
        "languages": site.languages,
        "palette": dict(site.branding.palette),
        # Single quotes: the stack goes into style="..." attributes.
        "font_stack": FONT_STACKS[site.branding.font].replace('"', "'"),
        "logo_url": site_url(settings, site, logo) if logo else None,
        "home_url": site_url(settings, site, "/"),
        "contact": site.contact,
        "paragraphs": paragraphs,
    }


def render(templates: Templates, template: str, context: Mapping[str, Any], language: str) -> Rendered:
    return Rendered(
        html=templates.render(f"{template}.html", context, language),
        text=templates.render(f"{template}.txt", context, language).strip() + "\n",
    )


def message_id(email_id: object, from_address: str) -> str:
    return f"<{email_id}@{from_address.rpartition('@')[2]}>"


def build_message(email: OutgoingEmail, from_address: str, *, now: dt.datetime | None = None) -> EmailMessage:
    """The MIME message: ``multipart/alternative`` with the text first and the HTML last
    (clients show the last part they can display)."""
    message = EmailMessage()
    message["From"] = Address(display_name=email.from_name, addr_spec=from_address)
    message["To"] = Address(display_name=email.to_name or "", addr_spec=email.to_address)
    if email.reply_to:
        message["Reply-To"] = Address(display_name=email.from_name, addr_spec=email.reply_to)
    message["Subject"] = email.subject
    message["Date"] = format_datetime(now or utcnow())
    message["Message-ID"] = email.message_id
    # Automated mail: no out-of-office or other automatic replies (RFC 3834, and Exchange's
    # own header).
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    if email.unsubscribe_url:
        message["List-Unsubscribe"] = f"<{email.unsubscribe_url}>"
    message.set_content(email.text_body)
    message.add_alternative(email.html_body, subtype="html")
    # After the body: setting the content clears every Content-* header.
    message["Content-Language"] = email.language
    return message
