"""`fleetctl sandbox up|env|down`: start the local emulators in the background and export their settings.

`up` starts moto (AWS) and fleetctl's Azure emulators as background processes bound to 127.0.0.1, waits
until they answer, and writes `export NAME=value` lines to `.fleetctl/sandbox.env` (also printed) that point
the standard settings at them: AWS_ENDPOINT_URL and dummy credentials, the hub/DPS connection-string
variables the example Targets reference, the CA bundle of the Azure emulator and the ARM endpoint, and the sandbox's
own Microsoft Entra tenant (AZURE_AUTHORITY_HOST, AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET: a
sandbox-only secret) with the hub/DPS hosts (FLEETCTL_HUB_HOST, FLEETCTL_DPS_HOST) for `auth: entraId` Targets.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine import fsutil

EMULATORS = {"aws": "engine.sandbox.aws", "azure": "engine.sandbox.azure_emulator"}


# what each emulator needs beyond fleetctl's own dependencies: the `sandbox` extra of pyproject.toml
NEEDS = {"aws": ("moto", "flask", "flask_cors")}
INSTALL = (
    "python -m pip install 'fleetctl[sandbox]'  (from a checkout of fleetctl: python -m pip install "
    "-e '.[sandbox]'; with the virtualenv activated first: source .venv/bin/activate)"
)


class SandboxError(RuntimeError):
    pass


def missing_modules(name: str) -> list[str]:
    """The modules emulator `name` needs that do not import in this environment (not installed, or broken)."""
    missing = []
    for module in NEEDS.get(name, ()):
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    return missing


def check_installed(name: str) -> None:
    """Before starting an emulator: say exactly what to install instead of "exited with code 1"."""
    missing = missing_modules(name)
    if missing:
        raise SandboxError(
            f"the {name} emulator needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
            f"not installed in the Python fleetctl runs from ({sys.executable}); install fleetctl's "
            f"sandbox extra: {INSTALL}"
        )


def state_dir(base: Path | None = None) -> Path:
    return (base or Path.cwd()) / ".fleetctl" / "sandbox"


def env_file(base: Path | None = None) -> Path:
    return (base or Path.cwd()) / ".fleetctl" / "sandbox.env"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _wait_for(path: Path, proc: subprocess.Popen, name: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            try:
                return json.loads(path.read_text())
            except json.JSONDecodeError:
                pass
        if proc.poll() is not None:
            raise SandboxError(
                f"the {name} emulator exited with code {proc.returncode}; see {path.parent / (name + '.log')}"
            )
        time.sleep(0.1)
    raise SandboxError(f"the {name} emulator did not start within {timeout:.0f} s")


def exports(aws: dict | None, azure: dict | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if aws:
        out.update(
            {
                "AWS_ENDPOINT_URL": aws["endpointUrl"],
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "AWS_DEFAULT_REGION": "eu-west-2",
                "AWS_EC2_METADATA_DISABLED": "true",
            }
        )
    if azure:
        out.update(
            {
                "FLEETCTL_HUB_CONNECTION_STRING": azure["hub_connection_string"],
                "REQUESTS_CA_BUNDLE": azure["ca_bundle"],
                "FLEETCTL_ARM_ENDPOINT": azure["arm_base_url"],
            }
        )
        if azure.get("dps_connection_string"):
            out["FLEETCTL_DPS_CONNECTION_STRING"] = azure["dps_connection_string"]
        for key in ("subscription_id", "resource_group", "hub_name", "dps_name"):
            if azure.get(key):
                out["FLEETCTL_SANDBOX_" + key.upper()] = str(azure[key])
        if azure.get("authority_host"):  # the sandbox's Entra tenant, for azure-identity (auth: entraId, ARM)
            out.update(
                {
                    "AZURE_AUTHORITY_HOST": azure["authority_host"],
                    "AZURE_TENANT_ID": azure["tenant_id"],
                    "AZURE_CLIENT_ID": azure["client_id"],
                    "AZURE_CLIENT_SECRET": azure["client_secret"],
                    "FLEETCTL_HUB_HOST": azure["host"],
                }
            )
            if azure.get("dps_connection_string"):
                out["FLEETCTL_DPS_HOST"] = azure["host"]
        if azure.get("import_container_url"):  # a container SAS URL for Targets' azure.importExport.containerUrl
            out["FLEETCTL_IMPORT_CONTAINER_URL"] = azure["import_container_url"]
    return out


def render_exports(values: dict[str, str]) -> str:
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(values.items()))


def up(base: Path | None = None, *, quota_faithful: bool | None = None) -> str:
    """Start every available emulator (idempotent: a running sandbox is reused) and return the export lines.

    `quota_faithful` (default: FLEETCTL_SANDBOX_QUOTAS=1) puts AWS's default quotas in front of moto
    (engine/sandbox/quota_proxy.py) and starts the Azure emulator at S1 rates, and exports
    FLEETCTL_RATE_LIMIT=on so fleetctl paces itself as it would against the clouds."""
    if quota_faithful is None:
        quota_faithful = os.environ.get("FLEETCTL_SANDBOX_QUOTAS") == "1"
    sdir = state_dir(base)
    sdir.mkdir(parents=True, exist_ok=True)
    pids_file = sdir / "pids.json"
    if pids_file.exists():
        running: dict[str, int] = json.loads(pids_file.read_text())
        if running and all(_alive(p) for p in running.values()) and ("aws-quota-proxy" in running) == quota_faithful:
            return env_file(base).read_text()
        down(base)
        sdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    pids: dict[str, int] = {}
    for name, module in EMULATORS.items():
        if importlib.util.find_spec(module) is None:
            continue
        check_installed(name)
        extra = [*(quota_args(name) if quota_faithful else []), *demo_args(name)]
        results[name] = _start(base, sdir, name, module, extra, pids)
    if quota_faithful and "aws" in results:
        proxy = _start(
            base,
            sdir,
            "aws-quota-proxy",
            "engine.sandbox.quota_proxy",
            ["--upstream", results["aws"]["endpointUrl"]],
            pids,
            info_name="quota_proxy",
        )
        results["aws"] = {**results["aws"], "endpointUrl": proxy["endpointUrl"]}
    values = exports(results.get("aws"), results.get("azure"))
    if quota_faithful:
        values["FLEETCTL_RATE_LIMIT"] = "on"
    text = render_exports(values) + (DEMO_NOTE if "azure" in results else "")
    fsutil.write_atomic(env_file(base), text)  # 0600: it holds the emulators' keys
    return text


DEMO_NOTE = (
    "# demo setting: the sandbox hub hands out one fixed CA verification code (Azure issues a new random\n"
    "# one on every request), so the example fleet's committed rootca-verification.pem, made from it with a\n"
    "# throwaway demo CA key, proves possession in one apply. Against Azure it takes two: apply reports the\n"
    "# code and the openssl command to sign it, you sign it with your CA key, commit, apply again.\n"
)


def demo_args(name: str) -> list[str]:
    """Emulator options of the demo sandbox: the Azure hub's fixed verification codes (explicit; the emulator's
    default is random codes, as Azure issues them)."""
    return ["--fixed-verification-codes"] if name == "azure" else []


def quota_args(name: str) -> list[str]:
    """Emulator options of the quota-faithful sandbox: the Azure emulator at IoT Hub S1×1 and DPS rates
    (research/quotas.md §2.1, §2.3; ARM is left unthrottled; import/export jobs at a peer's 1M devices/h), 1,000
    twins per query page, 50 ms latency, 250 ms of traffic shaping; moto's bulk registration tasks paced at AWS
    IoT's default quotas (the proxy paces the client's own calls)."""
    if name == "aws":
        return ["--pace-tasks"]
    if name != "azure":
        return []
    from engine.quotas import azure_hub_quotas

    q = azure_hub_quotas("S1", 1)
    rates = {
        "registry": q["registry"].tps,
        "query": q["query"].tps,
        "twin_read": q["twin_read"].tps,
        "twin_update": q["twin_update"].tps,
        "dps": q["dps"].tps,
        "jobs": q["jobs"].tps,
    }
    # traffic shaping: IoT Hub queues bursts before it answers 429 (quotas.md §2.1); the queue size is not documented,
    # a quarter of a second absorbs request jitter. Import/export jobs: no documented throughput; a peer assumes
    # ~1,000,000 devices per hour (quotas.md §2.2 [P]).
    return [
        "--rates",
        ",".join(f"{k}={v:.4g}" for k, v in rates.items()),
        "--page-size",
        "1000",
        "--latency-ms",
        "50",
        "--shaping-ms",
        "250",
        "--job-rate",
        f"{1_000_000 / 3600:.4g}",
    ]


def _start(
    base: Path | None,
    sdir: Path,
    name: str,
    module: str,
    extra: list[str],
    pids: dict[str, int],
    info_name: str | None = None,
) -> dict:
    info = sdir / f"{info_name or name}.json"
    info.unlink(missing_ok=True)
    with open(sdir / f"{name}.log", "ab") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "--state-dir", str(sdir), *extra],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=str(sdir),
        )
    pids[name] = proc.pid
    fsutil.write_atomic(sdir / "pids.json", json.dumps(pids))
    try:
        return _wait_for(info, proc, name)
    except SandboxError:
        down(base)
        raise


def env(base: Path | None = None) -> str:
    path = env_file(base)
    if not path.exists():
        raise SandboxError("the sandbox is not running (run: fleetctl sandbox up)")
    return path.read_text()


def down(base: Path | None = None) -> list[str]:
    sdir = state_dir(base)
    stopped: list[str] = []
    pids_file = sdir / "pids.json"
    if pids_file.exists():
        for name, pid in json.loads(pids_file.read_text()).items():
            if _alive(pid):
                try:
                    os.killpg(pid, signal.SIGTERM)
                except OSError:
                    os.kill(pid, signal.SIGTERM)
                for _ in range(50):
                    if not _alive(pid):
                        break
                    time.sleep(0.1)
                else:
                    os.kill(pid, signal.SIGKILL)
                stopped.append(name)
        pids_file.unlink()
    env_file(base).unlink(missing_ok=True)
    return stopped
