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

from perron.i18n import lazy

MAX_HOST_LENGTH = 253
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_PORT = re.compile(r"^[0-9]{1,5}$")
_PLAIN_HOST = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")


class InvalidHost(ValueError):
    """A host name that cannot be a web site's address; the message says why (in English,
    for logs and the command line) and ``kind`` names the problem, so pages can explain it
    in the reader's language: ``empty``, ``characters``, ``too_long``, ``part``, ``invalid``,
    ``scheme_or_port``, ``ip_address``, ``one_part``."""

    def __init__(self, message: str, kind: str = "invalid") -> None:
        super().__init__(message)
        self.kind = kind


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
        raise InvalidHost("the host name is empty", "empty")
    if any(character.isspace() for character in host) or "/" in host or "@" in host:
        raise InvalidHost(f"{raw!r} is not a host name (it holds spaces, '/' or '@')", "characters")
    if _is_ip(host):
        return host.lower()
    if len(host) > MAX_HOST_LENGTH:  # before IDNA, whose own refusal would not say why
        raise InvalidHost(f"{raw!r} is longer than {MAX_HOST_LENGTH} characters", "too_long")
    try:
        ascii_host = idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as error:
        raise InvalidHost(f"{raw!r} is not a valid host name ({error})", "part") from None
    except UnicodeError:
        raise InvalidHost(f"{raw!r} is not a valid host name") from None
    if len(ascii_host) > MAX_HOST_LENGTH:
        raise InvalidHost(f"{raw!r} is longer than {MAX_HOST_LENGTH} characters", "too_long")
    for label in ascii_host.split("."):
        if not _LABEL.match(label):
            raise InvalidHost(
                f"{raw!r} has an invalid part {label!r}: use letters, digits and inner hyphens", "part"
            )
    return ascii_host


def validate_site_domain(raw: str) -> str:
    """Normalise a domain an administrator wants a commune's site to answer on."""
    if ":" in raw or "://" in raw:
        raise InvalidHost(
            f"{raw!r}: write the domain alone, without http:// or a port, such as 'hannut.be'",
            "scheme_or_port",
        )
    host = normalize_host(raw)
    if _is_ip(host):
        raise InvalidHost(f"{raw!r} is an IP address; a commune's site needs a domain name", "ip_address")
    if "." not in host:
        raise InvalidHost(f"{raw!r} needs at least two parts, such as 'hannut.be'", "one_part")
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


HOST_PROBLEMS: dict[str, str] = {
    "empty": lazy("Type the address, such as www.hannut.be."),
    "characters": lazy("An address has no spaces, “/” or “@”: type it alone, such as www.hannut.be."),
    "too_long": lazy("This address is too long: an address has at most 253 characters."),
    "part": lazy(
        "This address has a part that is not allowed: use letters, digits, hyphens (not at the start "
        "or the end of a part) and dots between the parts, such as www.hannut.be."
    ),
    "invalid": lazy("This is not a valid address: type it such as www.hannut.be."),
    "scheme_or_port": lazy(
        "Type the address alone, without “https://”, “/” or a port number, such as www.hannut.be."
    ),
    "ip_address": lazy("This is a number (an IP address): the site needs a name, such as www.hannut.be."),
    "one_part": lazy("An address has at least two parts separated by a dot, such as hannut.be."),
}


def host_problem(error: InvalidHost) -> str:
    """What is wrong with a host name, in words for the person who typed it (their language)."""
    from perron.i18n import gettext

    return gettext(HOST_PROBLEMS.get(error.kind, HOST_PROBLEMS["invalid"]))
