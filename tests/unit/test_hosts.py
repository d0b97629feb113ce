"""Host names arrive in many spellings; each must find its commune or get a clear refusal."""

import pytest

from perron.tenancy.hosts import (
    InvalidHost,
    display_host,
    normalize_host,
    split_host_header,
    validate_site_domain,
)


@pytest.mark.parametrize(
    ("raw", "host", "port"),
    [
        ("hannut.be", "hannut.be", None),
        ("Hannut.BE", "hannut.be", None),
        ("hannut.be.", "hannut.be", None),
        ("hannut.be:8000", "hannut.be", 8000),
        ("HANNUT.be.:443", "hannut.be", 443),
        ("hännut.be", "xn--hnnut-gra.be", None),
        ("xn--hnnut-gra.be", "xn--hnnut-gra.be", None),
        ("  hannut.be  ", "hannut.be", None),
        ("127.0.0.1:8000", "127.0.0.1", 8000),
        ("[::1]:8000", "[::1]", 8000),
    ],
)
def test_host_header_spellings_reach_one_canonical_form(raw: str, host: str, port: int | None) -> None:
    parsed = split_host_header(raw)
    assert (parsed.host, parsed.port) == (host, port)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "no Host header"),
        ("", "no Host header"),
        ("hannut.be:port", "invalid port"),
        ("hannut.be:99999", "invalid port"),
        ("hannut..be", "not a valid"),
        ("-hannut.be", "hyphen"),
        ("han nut.be", "spaces"),
        ("hannut.be/admin", "'/'"),
        ("user@hannut.be", "'@'"),
        ("a" * 64 + ".be", "not a valid"),
        ("[::1", "unterminated"),
        ("hannut_.be", "not allowed"),
    ],
)
def test_malformed_hosts_are_refused_with_the_reason(raw: str | None, reason: str) -> None:
    with pytest.raises(InvalidHost, match=reason):
        split_host_header(raw)


def test_too_long_host_is_refused() -> None:
    host = ".".join(["a" * 60] * 5)
    with pytest.raises(InvalidHost, match=r"too long|longer than 253"):
        normalize_host(host)


def test_site_domains_need_a_name_with_two_parts() -> None:
    assert validate_site_domain("www.Hannut.be.") == "www.hannut.be"
    with pytest.raises(InvalidHost, match="IP address"):
        validate_site_domain("192.168.1.10")
    with pytest.raises(InvalidHost, match="at least two parts"):
        validate_site_domain("hannut")


def test_stored_idn_hosts_display_in_unicode() -> None:
    assert display_host("xn--hnnut-gra.be") == "hännut.be"
    assert display_host("hannut.be") == "hannut.be"
