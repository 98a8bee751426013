"""moto's server on loopback, configured like AWS where moto allows it.

Certificate ids are sha256(DER) as on AWS (`use_valid_cert`), which can only be set in-process, so the
sandbox runs moto's ThreadedMotoServer in a process of its own (`python -m engine.sandbox.aws`) rather than
the `moto_server` CLI. Known gaps of moto are listed in research/backends.md; tests name them. The tag APIs
and ListCACertificates, which fleetctl's ownership marker needs, are added by engine/sandbox/moto_ext.py.
"""

from __future__ import annotations

import logging
import urllib.request

import click

from engine.sandbox import serve_until_signalled


def start_moto(port: int = 0):
    """Start moto on 127.0.0.1 and return (server, endpoint_url)."""
    for name in ("werkzeug", "moto", "flask.app"):  # moto logs a traceback for every NotImplemented call
        logging.getLogger(name).setLevel(logging.CRITICAL)
    from moto.core.config import default_user_config

    default_user_config["iot"]["use_valid_cert"] = True
    from engine.sandbox import moto_ext, moto_index

    moto_ext.install()
    moto_index.install()  # keyed lookups: moto scans every thing/certificate/link per call
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, real_port = server.get_host_and_port()
    return server, f"http://{host}:{real_port}"


def reset(endpoint_url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST"), timeout=10).read()


@click.command(
    context_settings={"help_option_names": ["-h", "--help"]}, help="moto server for fleetctl's sandbox (loopback only)"
)
@click.option("--state-dir", required=True)
@click.option("--port", type=int, default=0)
@click.option(
    "--pace-tasks",
    is_flag=True,
    help="pace bulk registration tasks' internal operations at AWS IoT's default per-API quotas (set by "
    "`fleetctl sandbox up --quota-faithful`; engine/sandbox/moto_bulkreg.py)",
)
@click.option("--quotas", default="", help="with --pace-tasks: overrides, e.g. CreateThing=200")
def main(state_dir: str, port: int, pace_tasks: bool, quotas: str) -> None:
    """`python -m engine.sandbox.aws`: serve moto until SIGTERM, publishing its endpoint in aws.json."""
    server, url = start_moto(port)
    if pace_tasks:
        from engine.quotas import overrides_from_env
        from engine.sandbox import moto_bulkreg

        moto_bulkreg.configure(pace=True, quotas=overrides_from_env({"Q": quotas}, "Q"))
    serve_until_signalled(state_dir, "aws.json", {"endpointUrl": url})
    server.stop()


if __name__ == "__main__":
    main()
