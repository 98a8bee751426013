"""The sandbox's `python -m` entry points (click, as the fleetctl CLI): their options and help, and each server
started as `fleetctl sandbox up` starts it (a subprocess that publishes its endpoint and stops cleanly on SIGTERM)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.sandbox import aws, certs, quota_proxy
from engine.sandbox.azure import emulator
from engine.sandbox.azure.certs import load_certificate
from tests.conftest import ROOT

HELP = {  # module: (its click command, options its help must name)
    "engine.sandbox.quota_proxy": (
        quota_proxy.main,
        [
            "--upstream",
            "--state-dir",
            "--port",
            "--latency-ms",
            "--quotas",
            "--seed",
            "--trail-delay-s",
            "e.g. 30-80 (default)",
        ],
    ),
    "engine.sandbox.certs": (certs.main, ["OUT", "--serial", "--verification-code", "--azure"]),
    "engine.sandbox.aws": (aws.main, ["--state-dir", "--port", "--pace-tasks", "--quotas"]),
    "engine.sandbox.azure_emulator": (
        emulator.main,
        [
            "--state-dir",
            "--port",
            "--rates",
            "--page-size",
            "--latency-ms",
            "--shaping-ms",
            "--job-rate",
            "--fixed-verification-codes",
        ],
    ),
}


@pytest.mark.parametrize("module", sorted(HELP))
def test_help_names_every_option(module: str) -> None:
    command, options = HELP[module]
    for flag in ("-h", "--help"):
        result = CliRunner().invoke(command, [flag], prog_name=f"python -m {module}")
        assert result.exit_code == 0, result.output
        assert result.output.startswith(f"Usage: python -m {module} [OPTIONS]")
        for option in options:
            assert option in result.output, (module, option)


def test_python_dash_m_help_names_the_module() -> None:
    """What a person typing the documented command sees (click names the program `python -m MODULE`)."""
    proc = subprocess.run(
        [sys.executable, "-m", "engine.sandbox.azure_emulator", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("Usage: python -m engine.sandbox.azure_emulator"), proc


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        (quota_proxy.main, ["--state-dir", "x"], "Missing option '--upstream'"),
        (
            quota_proxy.main,
            ["--upstream", "http://127.0.0.1:1", "--state-dir", "x", "--latency-ms", "fast"],
            "is not LOW-HIGH in milliseconds",
        ),
        (aws.main, [], "Missing option '--state-dir'"),
        (emulator.main, ["--state-dir", "x", "--page-size", "many"], "'many' is not a valid integer"),
        (certs.main, [], "Missing argument 'OUT'"),
    ],
)
def test_usage_errors_exit_2(command, args, message: str) -> None:
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 2 and message in result.output, result.output


def test_latency_range_accepts_one_value_or_a_range() -> None:
    convert = quota_proxy.LatencyRange().convert
    assert convert("30-80", None, None) == (30.0, 80.0)
    assert convert("5", None, None) == (5.0, 5.0)
    assert convert((1.0, 2.0), None, None) == (1.0, 2.0)


def test_certs_writes_the_example_certificates(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        certs.main, [str(tmp_path / "aws"), "--serial", "AA01", "--serial", "AA02", "--verification-code", "code-123"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "aws").iterdir()) == [
        "aa01.pem",
        "aa02.pem",
        "springcore-sandbox-ca-verification.pem",
        "springcore-sandbox-ca.pem",
    ]
    proof = load_certificate((tmp_path / "aws" / "springcore-sandbox-ca-verification.pem").read_text())
    assert proof.subject.rfc4514_string() == "CN=code-123"


def _serve(module: str, state_dir: Path, info: str, *args: str) -> tuple[subprocess.Popen[str], dict]:
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--state-dir", str(state_dir), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (state_dir / info).exists():
            return proc, json.loads((state_dir / info).read_text())
        if proc.poll() is not None:
            raise AssertionError(f"{module} exited early: {proc.communicate()}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"{module} never wrote {info}")


def _stop(proc: subprocess.Popen[str]) -> None:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0, proc.communicate()
    assert time.monotonic() - started < 5  # a clean, fast shutdown
    out, _ = proc.communicate()
    assert out == ""  # library code prints nothing


def test_aws_and_quota_proxy_entry_points_serve_until_sigterm(tmp_path: Path) -> None:
    """`fleetctl sandbox up --quota-faithful` in small: moto with --pace-tasks, the proxy in front of it."""
    moto, described = _serve("engine.sandbox.aws", tmp_path, "aws.json", "--pace-tasks", "--quotas", "CreateThing=5")
    try:
        assert stat.S_IMODE(os.stat(tmp_path / "aws.json").st_mode) == 0o600
        proxy, front = _serve(
            "engine.sandbox.quota_proxy",
            tmp_path,
            "quota_proxy.json",
            "--upstream",
            described["endpointUrl"],
            "--latency-ms",
            "0-0",
            "--quotas",
            "ListThings=3",
        )
        try:
            assert front["upstream"] == described["endpointUrl"]
            assert front["endpointUrl"].startswith("http://127.0.0.1:")
            stats = json.loads(urllib.request.urlopen(front["endpointUrl"] + "/_proxy/stats", timeout=10).read())
            assert stats["total"] == 0
        finally:
            _stop(proxy)
    finally:
        _stop(moto)


def test_the_azure_emulator_takes_the_quota_faithful_command_line_of_sandbox_up(tmp_path: Path) -> None:
    from engine.sandbox import manager

    args = [*manager.quota_args("azure"), *manager.demo_args("azure")]
    proc, described = _serve("engine.sandbox.azure_emulator", tmp_path, "azure.json", *args)
    try:
        import requests

        stats = requests.get(
            f"https://{described['host']}/_emulator/stats", verify=described["ca_pem_path"], timeout=10
        ).json()
        assert stats["rates"]["registry"] == pytest.approx(1.667) and stats["rates"]["query"] == pytest.approx(0.3333)
    finally:
        _stop(proc)
