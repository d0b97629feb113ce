"""Several processes behave as one: two servers on the same database (and Redis) serve a
change made by a third process (a ``perron`` command) without restarting.

Each wait is bounded generously (this machine is shared); the time it took is printed, and
``bench/invalidation.py`` measures it properly (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.conftest import REDIS_URL, settings_env

pytestmark = pytest.mark.slow
DEADLINE = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def servers(env: dict[str, str], count: int = 2) -> Iterator[list[int]]:
    ports = [free_port() for _ in range(count)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "perron", "serve", "--port", str(port)],
            env={**os.environ, **env, "PERRON_LOG_LEVEL": "WARNING"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for port in ports
    ]
    try:
        for port, process in zip(ports, processes, strict=True):
            _wait_ready(port, process)
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_ready(port: int, process: subprocess.Popen[Any]) -> None:
    started = time.monotonic()
    last = "no answer"
    while time.monotonic() - started < 60:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            answer = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=3)
            if answer.status_code == 200:
                return
            last = answer.text
        except httpx.HTTPError as error:
            last = repr(error)
        time.sleep(0.1)
    process.terminate()
    output = process.stderr.read().decode()[-3000:] if process.stderr else ""
    raise TimeoutError(f"server on port {port} not ready: {last}\n{output}")


def fetch(port: int, host: str, path: str = "/") -> httpx.Response:
    return httpx.get(
        f"http://127.0.0.1:{port}{path}", headers={"host": host}, timeout=5, follow_redirects=False
    )


def perron(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "perron", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def wait_until(check: Any) -> float:
    started = time.monotonic()
    while time.monotonic() - started < DEADLINE:
        if check():
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError("the change did not reach every server in time")


@pytest.fixture(params=["redis", "database polling"])
def env(request: pytest.FixtureRequest, settings) -> dict[str, str]:
    values = settings_env(settings)
    if request.param == "redis":
        if not REDIS_URL:
            pytest.skip("needs PERRON_TEST_REDIS_URL")
        values["PERRON_REDIS_URL"] = REDIS_URL
    return values


async def test_branding_domain_and_status_changes_reach_every_server(
    env: dict[str, str], request: pytest.FixtureRequest
) -> None:
    # Everything that waits on another process runs in a thread: this process's event loop
    # must keep going, or a background task paused inside a transaction would hold SQLite's
    # write lock that the other processes wait for.
    await asyncio.to_thread(_scenario, env, request.node.callspec.id)


def _scenario(env: dict[str, str], label: str) -> None:
    perron(
        env,
        "tenants",
        "create",
        "alpha",
        "--nis",
        "12345",
        "--name",
        "fr=Alpha",
        "--language",
        "fr",
        "--domain",
        "alpha.test",
        "--active",
    )
    with servers(env) as ports:
        for port in ports:  # warm both caches
            assert "/branding.css?v=" in fetch(port, "alpha.test").text
            assert fetch(port, "www.alpha.test").status_code == 404
        before = {port: fetch(port, "alpha.test", "/branding.css").text for port in ports}
        assert all("#1f4e79" in css for css in before.values())

        perron(env, "tenants", "branding", "alpha", "--primary-color", "#003366")
        took = wait_until(
            lambda: all("#003366" in fetch(port, "alpha.test", "/branding.css").text for port in ports)
        )
        print(f"\n[{label}] branding reached both servers in {took * 1000:.0f} ms")

        perron(env, "domains", "add", "alpha", "www.alpha.test")
        took = wait_until(lambda: all(fetch(port, "www.alpha.test").status_code == 301 for port in ports))
        print(f"[{label}] new domain reached both servers in {took * 1000:.0f} ms")

        perron(env, "tenants", "suspend", "alpha", "--notice", "fr=Fermé pour travaux")
        took = wait_until(lambda: all(fetch(port, "alpha.test").status_code == 503 for port in ports))
        print(f"[{label}] suspension reached both servers in {took * 1000:.0f} ms")
        assert "Fermé pour travaux" in fetch(ports[1], "alpha.test").text
