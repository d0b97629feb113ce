"""Settings come from PERRON_* variables; a bad one stops the start and is named."""

from pathlib import Path

import pytest

from perron.config import ConfigurationError, load_settings


def test_defaults_give_the_embedded_deployment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PERRON_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.database.get_backend_name() == "sqlite"
    assert settings.database.database == str(tmp_path / "perron.sqlite3")
    assert settings.jobs_in_process
    assert not settings.is_postgres


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("PERRON_ENV", "staging", "PERRON_ENV"),
        ("PERRON_DATABASE_URL", "mysql://x@y/z", "PERRON_DATABASE_URL: only sqlite and postgresql"),
        ("PERRON_DATABASE_URL", "not a url", "PERRON_DATABASE_URL"),
        ("PERRON_REDIS_URL", "http://localhost", "PERRON_REDIS_URL: must start with redis://"),
        ("PERRON_MAX_REQUEST_BODY_BYTES", "ten", "PERRON_MAX_REQUEST_BODY_BYTES"),
        ("PERRON_CONSOLE_HOST", "console host", "PERRON_CONSOLE_HOST"),
        ("PERRON_LOG_LEVEL", "LOUD", "PERRON_LOG_LEVEL"),
    ],
)
def test_a_bad_variable_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert says in str(caught.value)


def test_urls_and_secrets_are_not_echoed_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERRON_DATABASE_URL", "mysql://admin:hunter2@db/perron")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)


def test_production_has_no_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERRON_ENV", "production")
    with pytest.raises(ConfigurationError, match="PERRON_SECRET_KEY is required in production"):
        load_settings()
    monkeypatch.setenv("PERRON_SECRET_KEY", "short")
    with pytest.raises(ConfigurationError, match="at least 32 characters"):
        load_settings()
    monkeypatch.setenv("PERRON_SECRET_KEY", "x" * 40)
    assert load_settings().secret() == "x" * 40


def test_development_secret_is_generated_once_and_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PERRON_DATA_DIR", str(tmp_path))
    first = load_settings().secret()
    assert len(first) >= 32
    assert load_settings().secret() == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_postgres_urls_get_the_async_driver_and_owner_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERRON_DATABASE_URL", "postgresql://app:pw@db:5432/perron")
    settings = load_settings()
    assert settings.database.drivername == "postgresql+psycopg"
    assert settings.database_owner == settings.database
    monkeypatch.setenv("PERRON_DATABASE_OWNER_URL", "postgresql://owner:pw@db:5432/perron")
    assert load_settings().database_owner.username == "owner"


def test_trusted_proxies_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERRON_TRUSTED_PROXIES", "10.0.0.1, 10.0.0.2")
    assert load_settings().trusted_proxies == ["10.0.0.1", "10.0.0.2"]
