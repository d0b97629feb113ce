"""Typed settings read once from ``PERRON_*`` environment variables.

Every setting is validated when the process starts; a bad value stops the start with a
message that names the variable (:class:`ConfigurationError`). Secrets have no production
default: in development a random secret is generated once and kept in the data folder.
"""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

ENV_PREFIX = "PERRON_"

Environment = Literal["development", "test", "production"]


class ConfigurationError(Exception):
    """The environment holds a setting Perron cannot start with."""


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Everything a Perron process needs to know about its deployment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    env: Environment = "development"
    debug: bool = False

    data_dir: Path = Path(".perron")
    """Where the embedded deployment keeps its SQLite file, generated secret and services."""

    database_url: str | None = None
    """SQLAlchemy URL of the application's connection. On PostgreSQL this role must not own
    the tables (row-level security applies to it). Default: SQLite file in ``data_dir``."""

    database_owner_url: str | None = None
    """URL of the role owning the schema, used by migrations only (PostgreSQL)."""

    database_pool_size: int = Field(default=10, ge=1, le=200)

    redis_url: str | None = None
    """Redis for the job broker and cache invalidation; none means jobs run in process."""

    secret_key: SecretStr | None = None
    """Signs CSRF tokens and session data. Required in production."""

    console_host: str = "console.localhost"
    """Host name on which the operator and intercommunale console answers."""

    public_port: int | None = Field(default=None, ge=1, le=65535)
    """Port shown in printed URLs when the platform is not behind a proxy on 80/443."""

    tenants_dir: Path = Path("tenants")
    themes_dir: Path = Path("themes")

    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["127.0.0.1"])
    """Addresses whose X-Forwarded-For/Proto headers are believed (comma separated)."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"

    max_request_body_bytes: int = Field(default=1_048_576, ge=1024)
    tenant_cache_ttl_seconds: float = Field(default=300.0, gt=0)
    tenant_cache_size: int = Field(default=20_000, ge=100)

    page_cache_size: int = Field(default=2000, ge=0)
    """Rendered public pages kept per process for anonymous visitors; 0 turns it off."""

    metrics_token: SecretStr | None = None
    """Bearer token required by ``/metrics`` on the console host; none means loopback only."""

    worker_threads: int = Field(default=2, ge=1, le=64)

    smtp_host: str | None = None
    """SMTP server e-mails are sent through; none means they are written as ``.eml`` files to
    ``<data_dir>/mail`` instead (development and the embedded default)."""

    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    """Upgrade the connection with STARTTLS (port 587); excludes ``smtp_ssl``."""

    smtp_ssl: bool = False
    """Connect over TLS from the start (port 465); excludes ``smtp_starttls``."""

    smtp_timeout_seconds: float = Field(default=30.0, gt=0, le=600)

    mail_from_address: str = "no-reply@perron.localhost"
    """Envelope and ``From`` address; the display name is the commune's name."""

    mail_enabled: bool = True
    """Off: no e-mail leaves the platform (notifications go to the inbox only)."""

    mail_retry_seconds: float = Field(default=60.0, gt=0, le=86_400)
    """Wait before the first new attempt after a temporary SMTP failure; doubles each time."""

    login_enabled: bool = True
    """Citizens and staff log in through Keycloak. Off only where nobody logs in (most tests);
    the login page then says so instead of failing."""

    keycloak_url: str = "http://127.0.0.1:58080"
    """Keycloak's base URL, as both browsers and this server reach it."""

    keycloak_admin_username: str = "admin"
    keycloak_admin_password: SecretStr | None = None
    """Admin of Keycloak's ``master`` realm; default: the password the development launcher
    generated in ``<data_dir>/keycloak/admin-password``."""

    keycloak_timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    backchannel_base_url: str | None = None
    """Where Keycloak reaches this deployment to end sessions (back-channel logout), e.g.
    ``http://10.0.0.5:8000``; default ``http://127.0.0.1:<public_port or 8000>``."""

    itsme_sandbox: bool | None = None
    """Provision the ``itsme-sandbox`` realm and broker itsme to it (never in production);
    default: on outside production."""

    nrn_hmac_key: SecretStr | None = None
    """Key of the HMAC that stands for a national register number (one person, one account);
    default: derived from the secret key. Changing it makes every person look new."""

    billing_enabled: bool = False
    """Bill communes and intercommunales through Stripe: billable modules then follow the
    payer's subscriptions. Off (the default, for deployments that do not bill): every module
    a commune switches on works, and the Stripe webhook answers 404."""

    stripe_secret_key: SecretStr | None = None
    """Stripe's secret API key (``sk_live_...``, or ``sk_test_...`` in test mode)."""

    stripe_webhook_secret: SecretStr | None = None
    """The signing secret of the webhook endpoint registered in Stripe (``whsec_...``)."""

    stripe_api_base: str | None = None
    """Where Stripe's API answers; default Stripe's own. Development and tests point it at
    stripe-mock (``infra/stripe/stripe-mock.sh env``)."""

    stripe_timeout_seconds: float = Field(default=20.0, gt=0, le=120)

    billing_grace_days: int = Field(default=14, ge=0, le=365)
    """Days a billable module keeps working for citizens after a payment first failed."""

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("console_host")
    @classmethod
    def _check_console_host(cls, value: str) -> str:
        from perron.tenancy.hosts import InvalidHost, normalize_host

        try:
            return normalize_host(value)
        except InvalidHost as error:
            raise ValueError(str(error)) from error

    @field_validator("database_url", "database_owner_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            url = make_url(value)
        except Exception as error:
            raise ValueError(f"not a database URL ({error})") from error
        if url.get_backend_name() not in {"sqlite", "postgresql"}:
            raise ValueError("only sqlite and postgresql databases are supported")
        return value

    @field_validator("mail_from_address")
    @classmethod
    def _check_mail_from(cls, value: str) -> str:
        text = value.strip()
        local, at, domain = text.rpartition("@")
        if not at or not local or "." not in domain or any(c.isspace() or c in '<>,;"' for c in text):
            raise ValueError("must be a plain e-mail address such as no-reply@example.be")
        return text

    @field_validator("smtp_host")
    @classmethod
    def _check_smtp_host(cls, value: str | None) -> str | None:
        text = (value or "").strip()
        if any(c.isspace() or c in "/@" for c in text):
            raise ValueError("must be a host name or address, without scheme, user or port")
        return text or None

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @model_validator(mode="after")
    def _one_tls_mode(self) -> Settings:
        if self.smtp_ssl and self.smtp_starttls:
            raise ValueError(
                "PERRON_SMTP_SSL and PERRON_SMTP_STARTTLS exclude each other: "
                "set PERRON_SMTP_STARTTLS=false to use TLS from the start (port 465)"
            )
        return self

    @model_validator(mode="after")
    def _billing_needs_stripe(self) -> Settings:
        if self.billing_enabled:
            missing = [
                f"{ENV_PREFIX}{name.upper()}"
                for name in ("stripe_secret_key", "stripe_webhook_secret")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"PERRON_BILLING_ENABLED needs {' and '.join(missing)}")
        return self

    @field_validator("keycloak_url", "backchannel_base_url", "stripe_api_base")
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.strip().rstrip("/")
        if not text.startswith(("http://", "https://")) or " " in text:
            raise ValueError("must be an http:// or https:// URL")
        return text

    @model_validator(mode="after")
    def _production_needs_secrets(self) -> Settings:
        if self.env == "production":
            if self.secret_key is None:
                raise ValueError("PERRON_SECRET_KEY is required in production")
            if len(self.secret_key.get_secret_value()) < 32:
                raise ValueError("PERRON_SECRET_KEY must be at least 32 characters long")
            if self.debug:
                raise ValueError("PERRON_DEBUG cannot be on in production")
            if self.itsme_sandbox:
                raise ValueError("PERRON_ITSME_SANDBOX cannot be on in production")
        return self

    # Derived values ------------------------------------------------------------------

    @property
    def uses_itsme_sandbox(self) -> bool:
        return self.env != "production" if self.itsme_sandbox is None else self.itsme_sandbox

    def keycloak_admin_secret(self) -> str:
        """The Keycloak admin password: configured, or the development launcher's."""
        if self.keycloak_admin_password is not None:
            return self.keycloak_admin_password.get_secret_value()
        path = self.data_dir / "keycloak" / "admin-password"
        if not path.exists():
            raise ConfigurationError(
                f"PERRON_KEYCLOAK_ADMIN_PASSWORD is not set and {path} does not exist: "
                "start Keycloak with infra/keycloak/keycloak.sh start, or set the variable"
            )
        return path.read_text().strip()

    def backchannel_base(self) -> str:
        return (self.backchannel_base_url or f"http://127.0.0.1:{self.public_port or 8000}").rstrip("/")

    @cached_property
    def database(self) -> URL:
        """URL of the application's database connection, with an async driver."""
        return _async_url(self.database_url or f"sqlite:///{self.data_dir / 'perron.sqlite3'}")

    @cached_property
    def database_owner(self) -> URL:
        """URL migrations use: the owner role, or the application's URL when there is none."""
        return _async_url(self.database_owner_url) if self.database_owner_url else self.database

    @property
    def is_postgres(self) -> bool:
        return self.database.get_backend_name() == "postgresql"

    @property
    def mail_folder(self) -> Path:
        """Where e-mails are written when no SMTP host is configured."""
        return self.data_dir / "mail"

    @property
    def jobs_in_process(self) -> bool:
        return self.redis_url is None

    def secret(self) -> str:
        """The signing secret; in development and tests, one generated and kept on disk."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.data_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()


def _async_url(raw: str) -> URL:
    url = make_url(raw)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    return url.set(drivername="postgresql+psycopg")


_SENSITIVE = ("secret", "token", "url", "password")


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, or stop with a message naming the bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            field = ".".join(str(part) for part in problem["loc"])
            variable = f"{ENV_PREFIX}{field.upper()}" if field else "configuration"
            message = problem["msg"].removeprefix("Value error, ")
            if not field:
                lines.append(f"  {message}")
            elif any(word in field for word in _SENSITIVE):
                lines.append(f"  {variable}: {message}")
            else:
                lines.append(f"  {variable}: {message} (got {problem.get('input')!r})")
        raise ConfigurationError("Perron cannot start, check these settings:\n" + "\n".join(lines)) from None
