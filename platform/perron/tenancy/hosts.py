"""Host names as Perron stores and compares them.

A host arrives in many spellings: ``Hannut.be.``, ``hannut.be:8000``, ``hännut.be``. Perron
keeps one canonical form: lower case, IDNA (punycode) ASCII, no trailing dot, no port. The
same function normalises the Host header of a request and a domain an admin types in, so a
domain is found however it is spelled.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import idna

from perron.i18n import gettext

MAX_HOST_LENGTH = 253
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_PORT = re.compile(r"^[0-9]{1,5}$")
_PLAIN_HOST = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")


class InvalidHost(ValueError):
    """A host name that cannot be a web site's address; the message says why."""


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int | None


def split_host_header(raw: str | None) -> HostPort:
    """Split and normalise a Host header value (``name[:port]``)."""
    if raw is None or not raw.strip():
        raise InvalidHost("the request has no Host header")
    raw = raw.strip()
    port: int | None = None
    if raw.startswith("["):  # IPv6 literal, never a commune's address
        end = raw.find("]")
        if end == -1:
            raise InvalidHost("unterminated IPv6 address in Host header")
        rest = raw[end + 1 :]
        if rest:
            port = _parse_port(rest.removeprefix(":") if rest.startswith(":") else "x")
        return HostPort(raw[: end + 1].lower(), port)
    if raw.count(":") == 1:
        raw, port_text = raw.split(":")
        port = _parse_port(port_text)
    return HostPort(normalize_host(raw), port)


def _parse_port(text: str) -> int:
    if not _PORT.match(text) or not 0 < int(text) < 65536:
        raise InvalidHost(f"invalid port {text!r} in Host header")
    return int(text)


def normalize_host(raw: str) -> str:
    """The canonical form of a host name, or :class:`InvalidHost` naming the problem."""
    host = raw.strip().rstrip(".") if raw else ""
    if _PLAIN_HOST.match(host) and "xn--" not in host and len(host) <= MAX_HOST_LENGTH:
        return host  # the common case: already canonical, no IDNA work needed
    if not host:
        raise InvalidHost(gettext("the host name is empty"))
    if any(character.isspace() for character in host) or "/" in host or "@" in host:
        raise InvalidHost(
            gettext("%(value)s is not a host name (it holds spaces, '/' or '@')") % {"value": repr(raw)}
        )
    if _is_ip(host):
        return host.lower()
    try:
        ascii_host = idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as error:
        raise InvalidHost(
            gettext("%(value)s is not a valid host name (%(error)s)") % {"value": repr(raw), "error": error}
        ) from None
    except UnicodeError:
        raise InvalidHost(gettext("%(value)s is not a valid host name") % {"value": repr(raw)}) from None
    if len(ascii_host) > MAX_HOST_LENGTH:
        raise InvalidHost(
            gettext("%(value)s is longer than %(count)d characters")
            % {"value": repr(raw), "count": MAX_HOST_LENGTH}
        )
    for label in ascii_host.split("."):
        if not _LABEL.match(label):
            raise InvalidHost(
                gettext("%(value)s has an invalid part %(part)s: use letters, digits and inner hyphens")
                % {"value": repr(raw), "part": repr(label)}
            )
    return ascii_host


def validate_site_domain(raw: str) -> str:
    """Normalise a domain an administrator wants a commune's site to answer on."""
    if ":" in raw or "://" in raw:
        raise InvalidHost(
            gettext("%(value)s: write the domain alone, without http:// or a port, such as 'hannut.be'")
            % {"value": repr(raw)}
        )
    host = normalize_host(raw)
    if _is_ip(host):
        raise InvalidHost(
            gettext("%(value)s is an IP address; a commune's site needs a domain name") % {"value": repr(raw)}
        )
    if "." not in host:
        raise InvalidHost(
            gettext("%(value)s needs at least two parts, such as 'hannut.be'") % {"value": repr(raw)}
        )
    return host


def display_host(host: str) -> str:
    """The human (Unicode) spelling of a stored host, for pages and CLI output."""
    try:
        return idna.decode(host)
    except idna.IDNAError:
        return host


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
