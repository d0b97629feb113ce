"""infra/keycloak/keycloak.sh without a Keycloak: its refusals, its Java check, its `env`.

Nothing here downloads or starts Keycloak (a real start takes a minute and needs Maven
Central; infra/keycloak/README.md records those figures). Each test points the script at its
own home folder and at free loopback ports, so a Keycloak already running on this machine
is never touched.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
from pathlib import Path

from tests.conftest import ROOT

SCRIPT = ROOT / "infra" / "keycloak" / "keycloak.sh"
INSTALL_HINT = "apt-get install openjdk-17-jre-headless"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launcher_env(home: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home.parent),
        "PERRON_KEYCLOAK_HOME": str(home),
        "PERRON_KEYCLOAK_PORT": str(free_port()),
        "PERRON_KEYCLOAK_MANAGEMENT_PORT": str(free_port()),
        **extra,
    }


def run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/bash", str(SCRIPT), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def fake_java(root: Path, name: str, version_line: str) -> Path:
    """A `java` that only answers `-version`, as a JDK of that version does (on stderr)."""
    java = root / name / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(0o755)
    return java


def test_an_unknown_or_missing_verb_is_refused_with_the_usage(tmp_path: Path) -> None:
    home = tmp_path / "keycloak"
    for args in (("restart",), ()):
        result = run(*args, env=launcher_env(home), cwd=tmp_path)
        assert result.returncode == 2
        assert "usage:" in result.stderr and "start|stop|status|env" in result.stderr
    assert not home.exists()


def test_a_malformed_setting_is_refused_before_anything_happens(tmp_path: Path) -> None:
    home = tmp_path / "keycloak"
    bad_port = run("start", env=launcher_env(home, PERRON_KEYCLOAK_PORT="80a"), cwd=tmp_path)
    assert bad_port.returncode == 2
    assert "PERRON_KEYCLOAK_PORT" in bad_port.stderr and "'80a'" in bad_port.stderr
    bad_version = run("start", env=launcher_env(home, PERRON_KEYCLOAK_VERSION="../../etc"), cwd=tmp_path)
    assert bad_version.returncode == 2
    assert "PERRON_KEYCLOAK_VERSION" in bad_version.stderr
    assert not home.exists()


def test_start_without_a_usable_java_says_what_to_install_and_starts_nothing(tmp_path: Path) -> None:
    """No JAVA_HOME, an empty PATH, and a JVM folder holding only a Java 11 (too old)."""
    home = tmp_path / "keycloak"
    jvm_root = tmp_path / "jvm"
    fake_java(jvm_root, "java-11-openjdk-amd64", 'openjdk version "11.0.24" 2024-07-16')
    env = launcher_env(home, PATH="", PERRON_KEYCLOAK_JVM_ROOT=str(jvm_root))

    result = run("start", env=env, cwd=tmp_path)

    assert result.returncode == 1
    assert "needs Java 17, 21 or 25" in result.stderr
    assert INSTALL_HINT in result.stderr
    assert "java-11-openjdk-amd64/bin/java (11)" in result.stderr  # says why that one was skipped
    assert not home.exists()  # nothing downloaded, unpacked, generated or started


def test_a_java_home_that_is_too_old_is_not_used(tmp_path: Path) -> None:
    home = tmp_path / "keycloak"
    java_8 = fake_java(tmp_path / "opt", "jdk8", 'java version "1.8.0_412"')
    env = launcher_env(
        home, PATH="", JAVA_HOME=str(java_8.parent.parent), PERRON_KEYCLOAK_JVM_ROOT=str(tmp_path / "none")
    )

    result = run("start", env=env, cwd=tmp_path)

    assert result.returncode == 1
    assert INSTALL_HINT in result.stderr
    assert f"{java_8} (8)" in result.stderr
    assert not home.exists()


def test_a_supported_java_in_the_jvm_folder_is_found(tmp_path: Path) -> None:
    """With a Java 17 there the script gets past Java; with an empty PATH it then stops at
    the missing download tools, still before creating anything."""
    home = tmp_path / "keycloak"
    jvm_root = tmp_path / "jvm"
    fake_java(jvm_root, "java-17-openjdk-amd64", 'openjdk version "17.0.15" 2025-04-15')
    env = launcher_env(home, PATH="", PERRON_KEYCLOAK_JVM_ROOT=str(jvm_root))

    result = run("start", env=env, cwd=tmp_path)

    assert result.returncode == 1
    assert INSTALL_HINT not in result.stderr
    assert "Missing tools: curl sha1sum unzip setsid flock" in result.stderr
    assert not home.exists()


def test_env_prints_the_url_and_says_how_to_get_a_password(tmp_path: Path) -> None:
    home = tmp_path / "keycloak"
    env = launcher_env(home)

    result = run("env", env=env, cwd=tmp_path)

    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert f"export PERRON_KEYCLOAK_URL=http://127.0.0.1:{env['PERRON_KEYCLOAK_PORT']}" in lines
    assert "export PERRON_KEYCLOAK_ADMIN_USERNAME=admin" in lines
    assert not any(line.startswith("export PERRON_KEYCLOAK_ADMIN_PASSWORD") for line in lines)
    assert "start first" in result.stdout
    assert not home.exists()


def test_env_exports_the_admin_password_so_that_a_shell_reads_it_back_exactly(tmp_path: Path) -> None:
    home = tmp_path / "keycloak"
    home.mkdir()
    password = "a b$c'd\"e;f"
    (home / "admin-password").write_text(password + "\n")
    env = launcher_env(home)

    printed = run("env", env=env, cwd=tmp_path)
    assert printed.returncode == 0
    read_back = f'eval {shlex.quote(printed.stdout)}; printf %s "$PERRON_KEYCLOAK_ADMIN_PASSWORD"'
    evaluated = subprocess.run(
        ["/bin/bash", "-c", read_back],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert evaluated.stdout == password


def test_status_and_stop_when_nothing_runs(tmp_path: Path) -> None:
    home = tmp_path / "keycloak"
    env = launcher_env(home)

    status = run("status", env=env, cwd=tmp_path)
    assert status.returncode == 3
    assert "not running" in status.stdout

    stop = run("stop", env=env, cwd=tmp_path)
    assert stop.returncode == 0
    assert "not running" in stop.stdout


def test_a_server_it_did_not_start_is_reported_and_left_alone(tmp_path: Path) -> None:
    """Something else listens on the port, there is no pid file and no health endpoint."""
    home = tmp_path / "keycloak"
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        env = launcher_env(home, PERRON_KEYCLOAK_PORT=str(listener.getsockname()[1]))

        status = run("status", env=env, cwd=tmp_path)
        stop = run("stop", env=env, cwd=tmp_path)

    assert status.returncode == 1
    assert "does not answer" in status.stdout
    assert stop.returncode == 1
    assert "not stopping it" in stop.stderr
