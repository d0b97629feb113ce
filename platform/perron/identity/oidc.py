"""Perron as an OpenID Connect relying party of Keycloak (authorization code + PKCE).

Everything the browser brings back is distrusted until checked here: the ``iss`` of the
authorization response (RFC 9207), the ID token's signature (asymmetric algorithms only, key
from the realm's JWKS), issuer, audience and authorized party, expiry, issue time, nonce, and
``auth_time`` (present, not in the future, fresh enough when a fresh login was asked). A
refusal raises :class:`LoginRefused` with a reason code that is logged and a message the person
can read. Keycloak being unreachable raises :class:`IdentityUnavailable`.

The authorization URL is built here rather than with python-keycloak, whose ``auth_url`` does
not encode its parameters and knows neither ``acr_values``, ``prompt``, ``max_age`` nor
``kc_idp_hint``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from jwcrypto import jwk, jws

from perron.config import Settings
from perron.logging import get_logger

log = get_logger("perron.identity")

CITIZENS = "citizens"
STAFF = "staff"
REALMS = (CITIZENS, STAFF)

ALLOWED_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"})
"""Signatures Perron accepts: asymmetric only. ``none`` and the HMAC family (which a forger
could compute with a public key mistaken for a secret) are refused."""

LEEWAY_SECONDS = 60
"""Clock difference tolerated between Keycloak and Perron."""

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"

ITSME = "itsme"
"""The alias of the itsme identity provider in the citizens realm."""
ITSME_ACR_BASIC = "http://itsme.services/v2/claim/acr_basic"
ITSME_ACR_ADVANCED = "http://itsme.services/v2/claim/acr_advanced"


class LoginRefused(Exception):
    """Keycloak's answer (or the browser's) cannot be trusted; nobody is logged in."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class IdentityUnavailable(Exception):
    """Keycloak cannot be reached (or answers with a server error)."""


CLIENT_PREFIX = "commune-"


def client_id_for(slug: str) -> str:
    """Each commune has its own client in each realm."""
    return CLIENT_PREFIX + slug


def slug_of_client(client_id: str) -> str | None:
    return client_id.removeprefix(CLIENT_PREFIX) if client_id.startswith(CLIENT_PREFIX) else None


def client_secret(settings: Settings, realm: str, client_id: str) -> str:
    """A client's secret, derived from the platform secret: nothing to store, and the same on
    every server. Provisioning sets the same value in Keycloak."""
    digest = hmac.new(
        settings.secret().encode(), f"keycloak-client:{realm}:{client_id}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def issuer(settings: Settings, realm: str) -> str:
    return f"{settings.keycloak_url}/realms/{realm}"


def pkce_pair() -> tuple[str, str]:
    """A code verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def b64url(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """What goes into the authorization URL besides the client's identity."""

    redirect_uri: str
    state: str
    nonce: str
    code_challenge: str
    scope: str = "openid"
    acr_values: str | None = None
    prompt: str | None = None
    max_age: int | None = None
    idp_hint: str | None = None
    ui_locales: str | None = None


def authorization_url(endpoint: str, client_id: str, request: AuthorizationRequest) -> str:
    params: dict[str, str] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": request.redirect_uri,
        "scope": request.scope,
        "state": request.state,
        "nonce": request.nonce,
        "code_challenge": request.code_challenge,
        "code_challenge_method": "S256",
    }
    optional = {
        "acr_values": request.acr_values,
        "prompt": request.prompt,
        "max_age": None if request.max_age is None else str(request.max_age),
        "kc_idp_hint": request.idp_hint,
        "ui_locales": request.ui_locales,
    }
    params.update({key: value for key, value in optional.items() if value is not None})
    separator = "&" if "?" in endpoint else "?"
    return endpoint + separator + urlencode(params)


@dataclass
class _Keys:
    keys: dict[str, jwk.JWK] = field(default_factory=dict)
    fetched_at: float = 0.0


class Provider:
    """One realm of Keycloak, as the relying party sees it: metadata, keys, token endpoint."""

    JWKS_MIN_REFRESH_SECONDS = 30.0
    METADATA_TTL_SECONDS = 3600.0

    def __init__(self, settings: Settings, realm: str, *, transport: httpx.AsyncBaseTransport | None = None):
        self.settings = settings
        self.realm = realm
        self.issuer = issuer(settings, realm)
        self._transport = transport
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys = _Keys()

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self.settings.keycloak_timeout_seconds, transport=self._transport)

    async def _send(self, method: str, url: str, what: str, **options: Any) -> httpx.Response:
        """One request to Keycloak; unreachable, or a server error, is :class:`IdentityUnavailable`."""
        try:
            async with self._client() as client:
                response = await client.request(method, url, **options)
        except httpx.HTTPError as error:
            raise IdentityUnavailable(f"{what}: {error.__class__.__name__}") from error
        if response.status_code >= 500:
            raise IdentityUnavailable(f"{what}: HTTP {response.status_code}")
        return response

    async def _get_json(self, url: str) -> Any:
        response = await self._send("GET", url, url)
        if response.status_code == 404:
            raise IdentityUnavailable(f"{url}: HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError as error:
            raise IdentityUnavailable(f"{url}: not JSON") from error

    async def metadata(self, *, fresh: bool = False) -> dict[str, Any]:
        """The realm's discovery document; ``fresh`` asks Keycloak now (a liveness check)."""
        now = time.monotonic()
        if fresh or self._metadata is None or now - self._metadata_at > self.METADATA_TTL_SECONDS:
            document = await self._get_json(f"{self.issuer}/.well-known/openid-configuration")
            if not isinstance(document, dict) or document.get("issuer") != self.issuer:
                raise IdentityUnavailable(f"{self.issuer}: discovery document names another issuer")
            self._metadata, self._metadata_at = document, now
        return self._metadata

    async def key(self, kid: str | None) -> jwk.JWK:
        """The realm's signing key ``kid``; the key set is fetched again (at most every 30 s)
        when an unknown key appears, so Keycloak can rotate its keys."""
        if kid in self._keys.keys:
            return self._keys.keys[kid]
        if time.monotonic() - self._keys.fetched_at >= self.JWKS_MIN_REFRESH_SECONDS or not self._keys.keys:
            metadata = await self.metadata()
            document = await self._get_json(metadata["jwks_uri"])
            keys: dict[str, jwk.JWK] = {}
            for entry in document.get("keys", []) if isinstance(document, dict) else []:
                if entry.get("use", "sig") != "sig" or "kid" not in entry:
                    continue
                try:
                    keys[entry["kid"]] = jwk.JWK(**entry)
                except Exception:  # noqa: S112 - a key Perron cannot read is not one it trusts
                    continue
            self._keys = _Keys(keys, time.monotonic())
        if kid is None and len(self._keys.keys) == 1:
            return next(iter(self._keys.keys.values()))
        try:
            return self._keys.keys[kid or ""]
        except KeyError:
            raise LoginRefused("unknown_key", f"no signing key {kid!r} in the realm's key set") from None

    async def exchange_code(
        self, *, code: str, redirect_uri: str, client_id: str, verifier: str
    ) -> dict[str, Any]:
        """The token endpoint's answer to the authorization code (client_secret_basic)."""
        metadata = await self.metadata()
        secret = client_secret(self.settings, self.realm, client_id)
        response = await self._send(
            "POST",
            metadata["token_endpoint"],
            "token endpoint",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            },
            auth=(client_id, secret),
        )
        try:
            body = response.json()
        except ValueError:
            raise LoginRefused("token_error", f"HTTP {response.status_code}, not JSON") from None
        if response.status_code != 200 or not isinstance(body, dict):
            code_error = body.get("error", "?") if isinstance(body, dict) else "?"
            raise LoginRefused("code_refused", f"the token endpoint refused the code ({code_error})")
        if not isinstance(body.get("id_token"), str):
            raise LoginRefused("no_id_token", "the token endpoint returned no ID token")
        return body

    async def userinfo(self, access_token: str, subject: str) -> dict[str, Any]:
        """The userinfo endpoint's claims about ``subject`` (read at login, never stored: the
        national register number travels only there, not in the ID token Perron keeps)."""
        metadata = await self.metadata()
        response = await self._send(
            "GET",
            metadata["userinfo_endpoint"],
            "userinfo endpoint",
            headers={"Authorization": f"Bearer {access_token}"},
        )
        try:
            claims = response.json()
        except ValueError:
            raise LoginRefused("userinfo_error", f"HTTP {response.status_code}, not JSON") from None
        if response.status_code != 200 or not isinstance(claims, dict):
            raise LoginRefused(
                "userinfo_error", f"the userinfo endpoint answered HTTP {response.status_code}"
            )
        if claims.get("sub") != subject:
            raise LoginRefused("userinfo_error", "the userinfo is about someone else")
        return claims

    async def verify_signature(self, raw: str) -> dict[str, Any]:
        """The claims of a compact JWS signed by this realm; anything else is refused."""
        parts = raw.split(".")
        if len(parts) != 3:
            raise LoginRefused("malformed_token", f"a signed token has 3 parts, this one {len(parts)}")
        try:
            header = json.loads(b64url(parts[0]))
        except ValueError:
            raise LoginRefused("malformed_token", "unreadable token header") from None
        if not isinstance(header, dict):
            raise LoginRefused("malformed_token", "unreadable token header")
        algorithm = header.get("alg")
        if algorithm not in ALLOWED_ALGORITHMS or not parts[2]:
            raise LoginRefused("bad_algorithm", f"signature algorithm {algorithm!r} is not accepted")
        key = await self.key(header.get("kid"))
        token = jws.JWS()
        try:
            token.deserialize(raw)
            token.verify(key, alg=algorithm)
        except Exception:
            raise LoginRefused("bad_signature", "the token's signature does not verify") from None
        try:
            claims = json.loads(token.payload)
        except ValueError:
            raise LoginRefused("malformed_token", "unreadable token payload") from None
        if not isinstance(claims, dict):
            raise LoginRefused("malformed_token", "the token's payload is not an object")
        return claims

    async def validate_id_token(
        self, raw: str, *, client_id: str, nonce: str, max_age: int | None = None
    ) -> dict[str, Any]:
        claims = await self.verify_signature(raw)
        self._check_common(claims, client_id)
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise LoginRefused("no_subject", "the ID token names nobody")
        if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise LoginRefused("wrong_nonce", "the ID token answers another login")
        auth_time = claims.get("auth_time")
        now = time.time()
        if not isinstance(auth_time, int | float) or auth_time > now + LEEWAY_SECONDS:
            raise LoginRefused("bad_auth_time", "the ID token does not say when the person logged in")
        if max_age is not None and now - auth_time > max_age + LEEWAY_SECONDS:
            raise LoginRefused("stale_login", "a fresh login was asked for, an older one came back")
        return claims

    async def validate_logout_token(self, raw: str) -> dict[str, Any]:
        """A back-channel logout token (OpenID Connect Back-Channel Logout 1.0, section 2.6)."""
        claims = await self.verify_signature(raw)
        audience = claims.get("aud")
        client_id = audience if isinstance(audience, str) else (audience or [None])[0]
        if not isinstance(client_id, str):
            raise LoginRefused("wrong_audience", "the logout token has no audience")
        self._check_common(claims, client_id, check_expiry=False)
        events = claims.get("events")
        if not isinstance(events, dict) or BACKCHANNEL_EVENT not in events:
            raise LoginRefused("not_logout_token", "the token carries no back-channel logout event")
        if "nonce" in claims:
            raise LoginRefused("not_logout_token", "a logout token must not carry a nonce")
        if not claims.get("sid") and not claims.get("sub"):
            raise LoginRefused("not_logout_token", "the logout token names neither a session nor a person")
        return claims

    def _check_common(self, claims: dict[str, Any], client_id: str, *, check_expiry: bool = True) -> None:
        if claims.get("iss") != self.issuer:
            raise LoginRefused("wrong_issuer", f"issued by {claims.get('iss')!r}, expected {self.issuer!r}")
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or client_id not in audiences:
            raise LoginRefused("wrong_audience", f"the token is meant for {audience!r}, not {client_id!r}")
        if len(audiences) > 1 and claims.get("azp") != client_id:
            raise LoginRefused("wrong_audience", "the token was obtained by another client")
        now = time.time()
        expires = claims.get("exp")
        if check_expiry and (not isinstance(expires, int | float) or expires < now - LEEWAY_SECONDS):
            raise LoginRefused("expired_token", "the token has expired")
        issued = claims.get("iat")
        if not isinstance(issued, int | float) or issued > now + LEEWAY_SECONDS:
            raise LoginRefused("bad_issue_time", "the token says it was issued in the future")
        if not check_expiry and issued < now - 600:
            raise LoginRefused("expired_token", "the logout token is too old")


class Providers:
    """The deployment's providers, one per realm, shared by every request of a process."""

    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._providers = {realm: Provider(settings, realm, transport=transport) for realm in REALMS}

    def __getitem__(self, realm: str) -> Provider:
        return self._providers[realm]

    def by_issuer(self, value: object) -> Provider | None:
        return next((p for p in self._providers.values() if p.issuer == value), None)


def unverified_claims(raw: str) -> dict[str, Any]:
    """A token's payload WITHOUT checking anything: only to pick which realm's keys verify it."""
    try:
        claims = json.loads(b64url(raw.split(".")[1]))
    except (IndexError, ValueError):
        raise LoginRefused("malformed_token", "unreadable token") from None
    if not isinstance(claims, dict):
        raise LoginRefused("malformed_token", "unreadable token")
    return claims
