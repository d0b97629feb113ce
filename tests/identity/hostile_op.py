"""A small OpenID provider for the login tests, able to lie in the ways Keycloak never would.

It answers over real HTTP (uvicorn in a thread, on a free port of 127.0.0.1), for the realms
``citizens`` and ``staff``, at Keycloak's paths, so Perron's relying party talks to it exactly as
it talks to Keycloak:

* ``/realms/<realm>/.well-known/openid-configuration``: discovery, advertising RFC 9207's
  ``iss`` parameter;
* ``.../protocol/openid-connect/certs``: the realm's JWKS (one RSA key per realm);
* ``.../protocol/openid-connect/auth``: records the authorization request (:class:`AuthRequest`)
  and answers with the redirect to the callback (``code``, ``state``, ``iss``), with no page
  in between: the test calls Perron's callback itself;
* ``.../protocol/openid-connect/token``: ``client_secret_basic`` checked against
  :func:`perron.identity.oidc.client_secret`, PKCE S256 checked, codes single use
  (``invalid_grant`` on replay or a wrong verifier); the ID token follows :attr:`HostileOP.plan`,
  which the test sets beforehand to forge the token in one precise way;
* ``.../protocol/openid-connect/userinfo``: the claims of the access token's login, the
  national number included (Keycloak's ``perron`` scope keeps it out of the ID token);
* ``.../protocol/openid-connect/logout``: the end session endpoint, recorded.

:meth:`HostileOP.logout_token` builds back-channel logout tokens, well formed or not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

import uvicorn
from jwcrypto import jwk, jws

from perron.identity.oidc import BACKCHANNEL_EVENT

REALMS = ("citizens", "staff")
PROTOCOL = "protocol/openid-connect"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json_segment(value: dict[str, Any]) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


@dataclass
class AuthRequest:
    """One authorization request, as the browser brought it to the provider."""

    realm: str
    params: dict[str, str]
    code: str

    def get(self, name: str) -> str | None:
        """A parameter: ``state``, ``nonce``, ``acr_values``, ``prompt``, ``max_age``..."""
        return self.params.get(name)


@dataclass
class Grant:
    realm: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str
    used: bool = False


@dataclass
class TokenPlan:
    """How the next ID tokens are made. The defaults give a valid token for the code's client;
    each field forges one thing."""

    subject: str = "citizen-ann"
    claims: dict[str, Any] = field(
        default_factory=lambda: {"email": "ann.peeters@example.org", "email_verified": True}
    )
    """More claims: by default a verified e-mail address (an e-mail and password login); itsme
    logins add ``perron_idp``, ``perron_itsme_acr``, ``perron_nrn``, ``perron_address``..."""
    drop: tuple[str, ...] = ()
    """Claims to leave out of the ID token (``sub``, ``auth_time``...)."""
    userinfo_only: tuple[str, ...] = ("perron_nrn",)
    """Claims given at the userinfo endpoint only, as Keycloak's mappers are set up."""
    userinfo_subject: str | None = None
    """Another ``sub`` in the userinfo answer: claims about someone else."""
    nonce: str | None = None
    issuer: str | None = None
    audience: str | list[str] | None = None
    """Another ``aud`` (and ``azp`` when a string): a token made for another client."""
    azp: str | None = None
    expires_in: int = 300
    issued_ago: int = 0
    auth_time_ago: int = 0
    signing: str = "rs256"
    """``rs256`` (the realm's key), ``none`` (unsigned), ``hs256_public`` (HMAC keyed with the
    realm's public key, the algorithm confusion), ``foreign`` (a key not in the JWKS, its own
    kid), ``foreign_same_kid`` (a key not in the JWKS claiming the realm key's kid)."""


@dataclass
class TokenCall:
    """What the token endpoint was asked and what it answered."""

    client_id: str | None
    code: str | None
    status: int
    error: str | None


class HostileOP:
    def __init__(self, secret_for: Callable[[str, str], str]) -> None:
        self._secret_for = secret_for
        self.keys = {
            realm: jwk.JWK.generate(kty="RSA", size=2048, kid=f"{realm}-{secrets.token_hex(4)}")
            for realm in REALMS
        }
        self.foreign_key = jwk.JWK.generate(kty="RSA", size=2048, kid=f"foreign-{secrets.token_hex(4)}")
        self.plan = TokenPlan()
        self.requests: list[AuthRequest] = []
        self.grants: dict[str, Grant] = {}
        self.token_calls: list[TokenCall] = []
        self.id_tokens: list[dict[str, Any]] = []
        """Claims of every ID token issued, in order (``sid`` for back-channel tests)."""
        self.raw_id_tokens: list[str] = []
        self.logouts: list[dict[str, str]] = []
        self.userinfo_calls = 0
        self._access: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- life cycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def issuer(self, realm: str) -> str:
        return f"{self.url}/realms/{realm}"

    def start(self) -> HostileOP:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self, log_config=None, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="hostile-op", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the hostile OpenID provider did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=20)
        self._server = self._thread = None

    def reset(self) -> None:
        with self._lock:
            self.plan = TokenPlan()
            self.requests.clear()
            self.grants.clear()
            self.token_calls.clear()
            self.id_tokens.clear()
            self.raw_id_tokens.clear()
            self.logouts.clear()
            self.userinfo_calls = 0
            self._access.clear()

    # -- tokens ------------------------------------------------------------------------------

    def sign(self, claims: dict[str, Any], realm: str, signing: str = "rs256", typ: str = "JWT") -> str:
        if signing == "none":
            return f"{_json_segment({'alg': 'none', 'typ': typ})}.{_json_segment(claims)}."
        if signing == "hs256_public":
            header = {"alg": "HS256", "typ": typ, "kid": self.keys[realm].get("kid")}
            signing_input = f"{_json_segment(header)}.{_json_segment(claims)}"
            secret = self.keys[realm].export_to_pem(private_key=False)
            mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
            return f"{signing_input}.{b64(mac)}"
        if signing == "rs256":
            key, kid = self.keys[realm], self.keys[realm].get("kid")
        elif signing == "foreign":
            key, kid = self.foreign_key, self.foreign_key.get("kid")
        elif signing == "foreign_same_kid":
            key, kid = self.foreign_key, self.keys[realm].get("kid")
        else:
            raise ValueError(f"unknown signing {signing!r}")
        token = jws.JWS(json.dumps(claims).encode())
        token.add_signature(key, alg="RS256", protected=json.dumps({"alg": "RS256", "typ": typ, "kid": kid}))
        return str(token.serialize(compact=True))

    def _id_token(self, grant: Grant, access_token: str) -> str:
        plan, now = self.plan, int(time.time())
        claims: dict[str, Any] = {
            "iss": plan.issuer or self.issuer(grant.realm),
            "sub": plan.subject,
            "aud": plan.audience if plan.audience is not None else grant.client_id,
            "azp": plan.azp or (plan.audience if isinstance(plan.audience, str) else None) or grant.client_id,
            "exp": now - plan.issued_ago + plan.expires_in,
            "iat": now - plan.issued_ago,
            "auth_time": now - plan.auth_time_ago,
            "nonce": plan.nonce if plan.nonce is not None else grant.nonce,
            "sid": secrets.token_hex(16),
            "typ": "ID",
            "name": "Ann Peeters",
            "given_name": "Ann",
            "family_name": "Peeters",
            "locale": "fr",
        }
        claims.update(plan.claims)
        for name in plan.drop:
            claims.pop(name, None)
        info = {key: value for key, value in claims.items() if key not in ("aud", "azp", "nonce", "typ")}
        info["sub"] = plan.userinfo_subject or claims.get("sub")
        self._access[access_token] = info
        for name in plan.userinfo_only:
            claims.pop(name, None)
        raw = self.sign(claims, grant.realm, plan.signing)
        self.id_tokens.append(claims)
        self.raw_id_tokens.append(raw)
        return raw

    def logout_token(
        self,
        realm: str,
        client_id: str,
        *,
        sid: str | None = None,
        sub: str | None = None,
        signing: str = "rs256",
        nonce: bool = False,
        events: bool = True,
        issuer: str | None = None,
    ) -> str:
        """A back-channel logout token; the keywords make it wrong in one way each."""
        claims: dict[str, Any] = {
            "iss": issuer or self.issuer(realm),
            "aud": client_id,
            "iat": int(time.time()),
            "jti": secrets.token_hex(12),
            "typ": "Logout",
        }
        if events:
            claims["events"] = {BACKCHANNEL_EVENT: {}}
        if sid is not None:
            claims["sid"] = sid
        if sub is not None:
            claims["sub"] = sub
        if nonce:
            claims["nonce"] = secrets.token_hex(8)
        return self.sign(claims, realm, signing, typ="logout+jwt")

    # -- HTTP --------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
        }
        query = {key: values[0] for key, values in parse_qs(scope["query_string"].decode()).items()}
        form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
        with self._lock:
            status, answer, extra = self._route(scope["method"], scope["path"], query, form, headers)
        if isinstance(answer, dict):
            payload, media = json.dumps(answer).encode(), b"application/json"
        else:
            payload, media = answer.encode(), b"text/plain; charset=utf-8"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", media),
                    (b"content-length", str(len(payload)).encode()),
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def _route(
        self, method: str, path: str, query: dict[str, str], form: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any] | str, list[tuple[bytes, bytes]]]:
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "realms" or parts[1] not in REALMS:
            return 404, {"error": "not_found"}, []
        realm, rest = parts[1], "/".join(parts[2:])
        if rest == ".well-known/openid-configuration" and method == "GET":
            return 200, self._discovery(realm), []
        if rest == f"{PROTOCOL}/certs" and method == "GET":
            return (
                200,
                {"keys": [{**self.keys[realm].export_public(as_dict=True), "use": "sig", "alg": "RS256"}]},
                [],
            )
        if rest == f"{PROTOCOL}/auth" and method == "GET":
            return self._authorize(realm, query)
        if rest == f"{PROTOCOL}/token" and method == "POST":
            return self._token(realm, form, headers)
        if rest == f"{PROTOCOL}/userinfo":
            self.userinfo_calls += 1
            authorization = headers.get("authorization", "")
            info = self._access.get(authorization[7:]) if authorization.startswith("Bearer ") else None
            if info is None:
                return (
                    401,
                    {"error": "invalid_token"},
                    [(b"www-authenticate", b'Bearer error="invalid_token"')],
                )
            return 200, info, []
        if rest == f"{PROTOCOL}/logout":
            self.logouts.append({**query, **form})
            target = query.get("post_logout_redirect_uri")
            return (303, "", [(b"location", target.encode())]) if target else (200, "You are logged out.", [])
        return 404, {"error": "not_found"}, []

    def _discovery(self, realm: str) -> dict[str, Any]:
        base = f"{self.issuer(realm)}/{PROTOCOL}"
        return {
            "issuer": self.issuer(realm),
            "authorization_endpoint": f"{base}/auth",
            "token_endpoint": f"{base}/token",
            "jwks_uri": f"{base}/certs",
            "userinfo_endpoint": f"{base}/userinfo",
            "end_session_endpoint": f"{base}/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "authorization_response_iss_parameter_supported": True,
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
        }

    def _authorize(
        self, realm: str, query: dict[str, str]
    ) -> tuple[int, dict[str, Any] | str, list[tuple[bytes, bytes]]]:
        required = ("response_type", "client_id", "redirect_uri", "state", "nonce", "code_challenge")
        missing = [name for name in required if not query.get(name)]
        if missing or query["response_type"] != "code" or query.get("code_challenge_method") != "S256":
            return 400, {"error": "invalid_request", "missing": missing}, []
        code = secrets.token_urlsafe(24)
        self.grants[code] = Grant(
            realm, query["client_id"], query["redirect_uri"], query["code_challenge"], query["nonce"]
        )
        self.requests.append(AuthRequest(realm, dict(query), code))
        answer = {"code": code, "state": query["state"], "iss": self.issuer(realm), "session_state": "x"}
        location = query["redirect_uri"] + "?" + urlencode(answer)
        return 302, "", [(b"location", location.encode())]

    def _token(
        self, realm: str, form: dict[str, str], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any] | str, list[tuple[bytes, bytes]]]:
        client_id, secret = None, None
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
            except ValueError:
                client_id = None
        code = form.get("code")

        def refuse(status: int, error: str) -> tuple[int, dict[str, Any], list[tuple[bytes, bytes]]]:
            self.token_calls.append(TokenCall(client_id, code, status, error))
            return status, {"error": error}, []

        if not client_id or not secret or not hmac.compare_digest(secret, self._secret_for(realm, client_id)):
            return refuse(401, "invalid_client")
        if form.get("grant_type") != "authorization_code" or not code:
            return refuse(400, "invalid_request")
        grant = self.grants.get(code)
        if grant is None or grant.realm != realm or grant.used:
            return refuse(400, "invalid_grant")
        grant.used = True  # whatever happens next, a code serves once
        if grant.client_id != client_id or grant.redirect_uri != form.get("redirect_uri"):
            return refuse(400, "invalid_grant")
        verifier = form.get("code_verifier", "")
        if b64(hashlib.sha256(verifier.encode()).digest()) != grant.code_challenge:
            return refuse(400, "invalid_grant")
        self.token_calls.append(TokenCall(client_id, code, 200, None))
        access_token = secrets.token_urlsafe(32)
        return (
            200,
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": self._id_token(grant, access_token),
                "scope": "openid",
            },
            [(b"cache-control", b"no-store")],
        )
