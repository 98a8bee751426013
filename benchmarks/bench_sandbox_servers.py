"""Requests per second through the sandbox's own HTTP servers: the quota proxy in front of moto and the Azure
emulator's HTTPS server (issue 18: what moving them onto werkzeug costs or saves).

Why this exists: both servers sit on the path of every sandbox test and benchmark call, so their per-request cost
is paid hundreds of thousands of times; this measures it apart from the engine. Everything runs in this process on
127.0.0.1 (as the test fixtures run them), one client at a time unless --threads says otherwise:

- quota proxy, pacing off (no latency, every quota at 10^9/s): `GET /_proxy/stats` (the proxy alone, no upstream)
  and `ListThingTypes` through botocore (proxy + moto), beside the same botocore call straight to moto;
- Azure emulator: `GET /_emulator/stats` over one requests.Session (TLS, the CA bundle verified) and
  `GET /twins/{id}` with a SAS token (authentication, routing, the hub's JSON).

Figures are local wall times and this process's CPU time (client and server threads together: steadier than wall
time on a loaded machine), medians of --repeat runs; they are not quota figures. `--werkzeug-close` measures
werkzeug's own response writing (a new connection per request) in place of the sandbox's keep-alive handler.

Run (from the repository root):
    .venv/bin/python benchmarks/bench_sandbox_servers.py --requests 2000 [--threads 4] [--json out.json]
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(call: Callable[[], object], n: int, threads: int, repeat: int) -> dict[str, float]:
    """Median wall time of `n` calls spread over `threads` clients (each its own connection)."""
    walls, cpus = [], []
    for _ in range(repeat):
        per = [n // threads + (1 if i < n % threads else 0) for i in range(threads)]
        errors: list[BaseException] = []

        def run(count: int, errors: list[BaseException] = errors) -> None:  # this repeat's list
            try:
                for _ in range(count):
                    call()
            except BaseException as exc:  # reported after the run: a benchmark never hides a failure
                errors.append(exc)

        workers = [threading.Thread(target=run, args=(count,)) for count in per]
        started, cpu = time.perf_counter(), time.process_time()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
        if errors:
            raise errors[0]
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    return {
        "requests": n,
        "threads": threads,
        "wall_s": round(wall, 3),
        "per_request_ms": round(wall / n * 1000, 3),
        "requests_per_s": round(n / wall, 1),
        "cpu_per_request_ms": round(cpu / n * 1000, 3),
    }


def bench_proxy(n: int, threads: int, repeat: int) -> dict[str, Any]:
    import botocore.session
    import requests

    from engine.quotas import AWS_IOT_QUOTAS, Quota
    from engine.sandbox.aws import start_moto
    from engine.sandbox.quota_proxy import QuotaProxy

    server, moto_url = start_moto()
    unlimited = {name: Quota(name, 1e9) for name in [*AWS_IOT_QUOTAS, "ListThingTypes", "LookupEvents"]}
    proxy = QuotaProxy(moto_url, latency_ms=(0.0, 0.0), quotas=unlimited).start()
    local = threading.local()

    def session() -> requests.Session:
        if getattr(local, "session", None) is None:
            local.session = requests.Session()
        return local.session

    def iot(url: str) -> Any:
        key = "iot_" + url
        if getattr(local, key, None) is None:
            setattr(
                local,
                key,
                botocore.session.get_session().create_client(
                    "iot",
                    region_name="eu-west-2",
                    endpoint_url=url,
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                ),
            )
        return getattr(local, key)

    try:

        def stats() -> None:
            session().get(proxy.endpoint_url + "/_proxy/stats", timeout=30).raise_for_status()

        return {
            "proxy_stats": timed(stats, n, threads, repeat),
            "proxy_list_thing_types": timed(
                lambda: iot(proxy.endpoint_url).list_thing_types(maxResults=10), n, threads, repeat
            ),
            "moto_list_thing_types": timed(lambda: iot(moto_url).list_thing_types(maxResults=10), n, threads, repeat),
        }
    finally:
        proxy.stop()
        server.stop()


def bench_azure(n: int, threads: int, repeat: int) -> dict[str, Any]:
    import requests

    from engine.providers.azure.sas import generate_sas_token
    from engine.sandbox.azure import AzureEmulator

    with AzureEmulator() as emulator:
        local = threading.local()

        def session() -> requests.Session:
            if getattr(local, "session", None) is None:
                local.session = requests.Session()
            return local.session

        key = emulator.hub_connection_string.split("SharedAccessKey=", 1)[1]
        token = generate_sas_token(emulator.host, key, "iothubowner", ttl=3600)
        session().put(
            f"https://{emulator.host}/devices/bench-device?api-version=2021-04-12",
            json={"deviceId": "bench-device"},
            headers={"Authorization": token},
            verify=emulator.ca_pem_path,
            timeout=30,
        ).raise_for_status()

        def stats() -> None:
            session().get(
                f"https://{emulator.host}/_emulator/stats", verify=emulator.ca_pem_path, timeout=30
            ).raise_for_status()

        def twin() -> None:
            session().get(
                f"https://{emulator.host}/twins/bench-device?api-version=2021-04-12",
                headers={"Authorization": token},
                verify=emulator.ca_pem_path,
                timeout=30,
            ).raise_for_status()

        return {
            "emulator_stats": timed(stats, n, threads, repeat),
            "emulator_get_twin": timed(twin, n, threads, repeat),
        }


@click.command(help=__doc__.split("\n\n")[0])
@click.option("--requests", "n", type=int, default=2000, show_default=True, help="requests per measurement")
@click.option("--threads", type=int, default=1, show_default=True, help="concurrent clients")
@click.option("--repeat", type=int, default=3, show_default=True, help="runs per measurement (the median is kept)")
@click.option(
    "--werkzeug-close",
    is_flag=True,
    help="measure werkzeug's own response writing (Connection: close after every response) instead of "
    "the sandbox's keep-alive handler (engine/sandbox/wsgi.py), to see what keep-alive is worth",
)
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="also write the figures here",
)
def main(n: int, threads: int, repeat: int, werkzeug_close: bool, json_out: Path | None) -> None:
    if werkzeug_close:
        from werkzeug.serving import WSGIRequestHandler

        from engine.sandbox.wsgi import KeepAliveHandler

        KeepAliveHandler.run_wsgi = WSGIRequestHandler.run_wsgi  # type: ignore[method-assign]  # the A/B switch
    figures = {**bench_proxy(n, threads, repeat), **bench_azure(n, threads, repeat)}
    for name, row in figures.items():
        click.echo(
            f"{name:26} {row['requests']:>6} requests  {row['threads']} thread(s)  {row['wall_s']:>8.3f} s  "
            f"{row['per_request_ms']:>7.3f} ms/request  {row['requests_per_s']:>8.1f} req/s  "
            f"CPU {row['cpu_per_request_ms']:>6.3f} ms/request"
        )
    if json_out is not None:
        json_out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
