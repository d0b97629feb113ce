"""HTTP benchmark of the platform core (run by hand; figures go to docs/performance.md).

    .venv/bin/python bench/http_bench.py [--duration 15] [--tenants 1000] [--connections 32]

It starts PostgreSQL and Redis (infra/), loads the demo communes plus N generated ones into
the ``perron_bench`` database, serves Perron exactly as ``perron serve`` does (one uvicorn
process, logs at INFO to a file, PostgreSQL with row-level security, Redis), and measures
with wrk from Debian's packages:

  (a) a bare Litestar endpoint served the same way (bench/bare_app.py);
  (b) a commune's home page (hannut.localhost);
  (c) the home page with a random one of the N communes' hosts per request;

then the latency of (b) at half of its saturation rate, with hey (Go module proxy) holding
the rate. Targets: (b) >= 35% of (a); (c) >= 90% of (b); p99 of (b) at half load < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as host_platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "platform"))

from sqlalchemy import create_engine, text  # noqa: E402

from perron.audit import acting_as, command_line_actor  # noqa: E402
from perron.config import load_settings  # noqa: E402
from perron.db import migrate  # noqa: E402
from perron.db.engine import Database  # noqa: E402
from perron.db.scope import platform_scope  # noqa: E402
from perron.tenancy import actions  # noqa: E402
from perron.tenancy.definitions import apply_definitions, load_definitions  # noqa: E402
from perron.tenancy.models import CommuneStatus  # noqa: E402

PG_PORT = int(os.environ.get("PERRON_PG_PORT", "55432"))
REDIS_PORT = int(os.environ.get("PERRON_REDIS_PORT", "56379"))
RESULTS = ROOT / ".perron" / "bench"
HEY = ROOT / ".perron" / "bin" / "hey"


def sh(*command: str, **options: object) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True, **options).stdout  # type: ignore[call-overload]


def ensure_tools() -> None:
    if not shutil.which("wrk"):
        print("Installing wrk from Debian's packages…")
        sh("apt-get", "install", "-y", "-qq", "wrk")
    if not HEY.exists():
        print("Installing hey from the Go module proxy…")
        HEY.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["go", "install", "github.com/rakyll/hey@v0.1.5"],
            check=True,
            env={**os.environ, "GOBIN": str(HEY.parent)},
        )


def bench_env() -> dict[str, str]:
    return {
        "PERRON_ENV": "production",
        "PERRON_SECRET_KEY": "benchmark-secret-benchmark-secret-0123456789",
        "PERRON_DATA_DIR": str(ROOT / ".perron" / "bench-data"),
        "PERRON_DATABASE_URL": f"postgresql://perron_app:perron_app@127.0.0.1:{PG_PORT}/perron_bench",
        "PERRON_DATABASE_OWNER_URL": f"postgresql://perron_owner:perron_owner@127.0.0.1:{PG_PORT}/perron_bench",
        "PERRON_REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/5",
        "PERRON_TENANTS_DIR": str(ROOT / "tenants"),
        "PERRON_THEMES_DIR": str(ROOT / "themes"),
        "PERRON_LOG_LEVEL": "INFO",
    }


def prepare_database(env: dict[str, str], tenants: int) -> list[str]:
    """Fresh schema, the demo communes and ``tenants`` generated ones; returns their hosts."""
    os.environ.update(env)
    settings = load_settings()
    engine = create_engine(migrate.sync_url(settings.database_owner))
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    migrate.upgrade(settings)

    async def load() -> list[str]:
        database = Database(settings.database)
        hosts = []
        with acting_as(command_line_actor()), platform_scope("benchmark: load communes"):
            async with database.transaction() as session:
                await apply_definitions(
                    session, load_definitions(settings.tenants_dir), console_host=settings.console_host
                )
            for start in range(0, tenants, 250):
                async with database.transaction() as session:
                    for number in range(start, min(start + 250, tenants)):
                        slug = f"bench-{number:04d}"
                        await actions.create_commune(
                            session,
                            slug=slug,
                            nis_code=str(10000 + number),
                            names={"fr": f"Commune {number}", "nl": f"Gemeente {number}"},
                            languages=["fr", "nl"],
                            domains=[f"{slug}.localhost"],
                            status=CommuneStatus.ACTIVE,
                        )
                        hosts.append(f"{slug}.localhost")
                print(f"  {len(hosts)}/{tenants} communes created", end="\r", flush=True)
        await database.dispose()
        print()
        return hosts

    return asyncio.run(load())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(command: list[str], env: dict[str, str], log: Path, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, env={**os.environ, **env}, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT
    )
    for _ in range(300):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                time.sleep(0.5)
                return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"{command} exited; see {log}") from None
            time.sleep(0.1)
    raise TimeoutError(f"{command} did not start")


def wrk(
    url: str, *, seconds: int, connections: int, host: str | None = None, script: Path | None = None
) -> dict:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if host:
        command += ["-H", f"Host: {host}"]
    if script:
        command += ["-s", str(script)]
    output = sh(*command, url)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latency = {
        match.group(1): _ms(match.group(2)) for match in re.finditer(r"\s(50|99)%\s+([\d.]+\w+)", output)
    }
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": rps,
        "p50_ms": latency.get("50"),
        "p99_ms": latency.get("99"),
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def warm_every_host(port: int, hosts: list[str]) -> None:
    """Visit each commune once: the figures are for a running server, not a cold start."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for host in hosts:
        connection.request("GET", "/", headers={"Host": host})
        response = connection.getresponse()
        response.read()
        assert response.status == 200, (host, response.status)
    connection.close()


def hey_at_rate(url: str, host: str, rate: float, seconds: int, workers: int = 16) -> dict:
    output = sh(
        str(HEY),
        "-z",
        f"{seconds}s",
        "-c",
        str(workers),
        "-q",
        f"{rate / workers:.2f}",
        "-host",
        host,
        "-disable-keepalive=false",
        url,
    )
    percentiles = {int(p): float(v) * 1000 for p, v in re.findall(r"(\d+)%+ in ([\d.]+) secs", output)}
    achieved = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    return {
        "rate_asked": round(rate),
        "rate_achieved": achieved,
        "p50_ms": percentiles.get(50),
        "p99_ms": percentiles.get(99),
    }


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    memory = int(Path("/proc/meminfo").read_text().split()[1]) // 1024 // 1024
    system = f"{host_platform.platform()}, Python {host_platform.python_version()}"
    return f"{os.cpu_count()} cores ({cpu}), {memory} GiB, {system}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=15, help="seconds per measurement")
    parser.add_argument("--tenants", type=int, default=1000, help="generated communes for (c)")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    ensure_tools()
    sh(str(ROOT / "infra/postgres/pg.sh"), "start")
    sh(str(ROOT / "infra/redis/redis.sh"), "start")
    env = bench_env()
    print(f"Preparing perron_bench with the demo communes and {args.tenants} generated ones…")
    hosts = prepare_database(env, args.tenants)

    RESULTS.mkdir(parents=True, exist_ok=True)
    perron_port, bare_port, uncached_port = free_port(), free_port(), free_port()
    python = sys.executable
    perron = start(
        [python, "-m", "perron", "serve", "--port", str(perron_port)],
        env,
        RESULTS / "perron-server.log",
        perron_port,
    )
    bare = start(
        [python, str(ROOT / "bench" / "bare_app.py"), str(bare_port)],
        env,
        RESULTS / "bare-server.log",
        bare_port,
    )
    uncached = start(
        [python, "-m", "perron", "serve", "--port", str(uncached_port)],
        env | {"PERRON_PAGE_CACHE_SIZE": "0"},
        RESULTS / "perron-uncached-server.log",
        uncached_port,
    )
    try:
        script = Path(tempfile.mkdtemp()) / "random_host.lua"
        script.write_text(
            "local hosts = {" + ",".join(f'"{host}"' for host in hosts) + "}\n"
            "request = function()\n"
            "  return wrk.format('GET', '/', {['Host'] = hosts[math.random(#hosts)]})\n"
            "end\n"
        )
        perron_url, bare_url = f"http://127.0.0.1:{perron_port}/", f"http://127.0.0.1:{bare_port}/"
        print("Warming up…")
        wrk(bare_url, seconds=3, connections=args.connections)
        wrk(perron_url, seconds=3, connections=args.connections, host="hannut.localhost")
        warm_every_host(perron_port, hosts)
        wrk(perron_url, seconds=3, connections=args.connections, script=script)

        results = {
            "machine": machine(),
            "duration_s": args.duration,
            "connections": args.connections,
            "tenants": args.tenants,
        }
        print("(a) bare Litestar endpoint…")
        results["a_bare"] = wrk(bare_url, seconds=args.duration, connections=args.connections)
        print("(b) a commune's home page…")
        results["b_home"] = wrk(
            perron_url, seconds=args.duration, connections=args.connections, host="hannut.localhost"
        )
        print(f"(c) home page, random host among {args.tenants} communes…")
        results["c_many"] = wrk(
            perron_url, seconds=args.duration, connections=args.connections, script=script
        )
        print("(b') a commune's home page rendered on every request (page cache off)…")
        uncached_url = f"http://127.0.0.1:{uncached_port}/"
        wrk(uncached_url, seconds=3, connections=args.connections, host="hannut.localhost")
        results["b_rendered"] = wrk(
            uncached_url, seconds=args.duration, connections=args.connections, host="hannut.localhost"
        )
        half = results["b_home"]["rps"] / 2
        print(f"(b) at half load ({half:.0f} requests/s)…")
        results["b_half_load"] = hey_at_rate(perron_url, "hannut.localhost", half, args.duration)
    finally:
        for process in (perron, bare, uncached):
            process.terminate()
            process.wait(timeout=20)

    a, b, c = results["a_bare"], results["b_home"], results["c_many"]
    results["b_over_a"] = round(b["rps"] / a["rps"], 3)
    results["c_over_b"] = round(c["rps"] / b["rps"], 3)
    results["rendered_over_a"] = round(results["b_rendered"]["rps"] / a["rps"], 3)
    out = RESULTS / f"http-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print()
    print(f"machine: {results['machine']}")
    print(f"{'scenario':<44}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for label, row in (
        ("(a) bare Litestar endpoint", a),
        ("(b) home page, one commune", b),
        (f"(c) home page, {args.tenants} communes, random host", c),
        ("(b') home page, page cache off", results["b_rendered"]),
    ):
        print(f"{label:<44}{row['rps']:>10.0f}{row['p50_ms']:>10.2f}{row['p99_ms']:>10.2f}")
    half_row = results["b_half_load"]
    print(
        f"{'(b) at half load (' + str(half_row['rate_asked']) + ' req/s asked)':<44}"
        f"{half_row['rate_achieved']:>10.0f}{half_row['p50_ms']:>10.2f}{half_row['p99_ms']:>10.2f}"
    )
    print()
    print(f"(b)/(a) = {results['b_over_a']:.0%}  (target >= 35%)")
    print(f"(c)/(b) = {results['c_over_b']:.0%}  (target >= 90%)")
    print(f"(b')/(a) = {results['rendered_over_a']:.0%}  (every request rendered; for reference)")
    print(f"p99 of (b) at half load = {half_row['p99_ms']:.1f} ms  (target < 50 ms)")
    errors = sum(row["non_2xx"] for row in (a, b, c, results["b_rendered"]))
    if errors:
        print(f"WARNING: {errors} responses were not 2xx/3xx: the figures are not valid")
    print(f"Saved {out}")


if __name__ == "__main__":
    main()
