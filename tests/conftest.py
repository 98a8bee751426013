"""Shared fixtures: moto's server on loopback for the whole session, reset per test; a copy of the example
fleet; and a runner that invokes the real CLI in-process (click) or as a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
FLEET = Path(os.environ.get("FLEETCTL_TEST_FLEET", ROOT / "fleet"))  # the example fleet (override to test a snapshot)
# Secret fingerprints are keyed (engine/fingerprint.py): one fixed test key, so golden files are stable and no test
# creates ~/.fleetctl/fingerprint.key in the real home directory.
os.environ.setdefault("FLEETCTL_FINGERPRINT_KEY", "fleetctl-test-fingerprint-key-0123456789")


@pytest.fixture(scope="session")
def moto_server():
    from engine.sandbox.aws import start_moto

    server, url = start_moto()
    yield url
    server.stop()


@pytest.fixture
def aws_env(moto_server, monkeypatch, tmp_path):
    """A clean AWS account behind AWS_ENDPOINT_URL, dummy credentials, and a private journal."""
    from engine.sandbox.aws import reset

    reset(moto_server)
    env = {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t-aws-key-never-printed",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-2",
        "AWS_EC2_METADATA_DISABLED": "true",
        "FLEETCTL_JOURNAL": str(tmp_path / "journal.jsonl"),
        "FLEETCTL_NOW": "2026-11-21T10:00:00Z",
        "FLEETCTL_GIT_COMMIT": "0123456789abcdef0123456789abcdef01234567",
        "FLEETCTL_ACTOR": "ci-test",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def fleet_dir(tmp_path) -> Path:
    """A private copy of the example fleet (tests may edit it)."""
    dest = tmp_path / "fleet"
    shutil.copytree(FLEET, dest, ignore=shutil.ignore_patterns("out", ".fleetctl"))
    return dest


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(*args: str, env: dict | None = None) -> Result:
    """The CLI in-process, as a user runs it (exit codes included)."""
    from engine.cli import cli

    runner = CliRunner()
    res = runner.invoke(cli, list(args), env=env, catch_exceptions=False)
    return Result(res.exit_code, res.stdout, res.stderr)


def run_subprocess(*args: str, env: dict | None = None, cwd: Path | None = None) -> Result:
    """The installed console entry point in a child process (what CI and users run)."""
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd or ROOT,
        timeout=300,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli():
    return run_cli
