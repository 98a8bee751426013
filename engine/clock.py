"""The injected clock and commit lookup: plans and journals never call datetime.now() inline.

`FLEETCTL_NOW` (ISO-8601) or `SOURCE_DATE_EPOCH` (seconds) pin the clock, so golden plans stay byte-stable.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

Clock = Callable[[], dt.datetime]


def clock_from_env(env: Mapping[str, str] | None = None) -> Clock:
    env = os.environ if env is None else env
    if env.get("FLEETCTL_NOW"):
        fixed = dt.datetime.fromisoformat(env["FLEETCTL_NOW"].replace("Z", "+00:00"))
        return lambda: fixed
    if env.get("SOURCE_DATE_EPOCH"):
        fixed = dt.datetime.fromtimestamp(int(env["SOURCE_DATE_EPOCH"]), tz=dt.UTC)
        return lambda: fixed
    return lambda: dt.datetime.now(dt.UTC)


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def git_commit(path: Path, env: Mapping[str, str] | None = None) -> str | None:
    """The commit of the manifests: GITHUB_SHA in Actions, else `git rev-parse HEAD` (None outside git)."""
    env = os.environ if env is None else env
    if env.get("FLEETCTL_GIT_COMMIT"):
        return env["FLEETCTL_GIT_COMMIT"]
    if env.get("GITHUB_SHA"):
        return env["GITHUB_SHA"]
    try:
        out = subprocess.run(
            ["git", "-C", str(path if path.is_dir() else path.parent), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def actor(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return env.get("FLEETCTL_ACTOR") or env.get("GITHUB_ACTOR") or env.get("USER") or "unknown"
