"""Issue 13.1: no secret byte in any output. Unique canary values are planted in every secret-capable field and file
reference (env secrets, `{file:}` secrets, a device dump's secret register, Azure symmetric keys, the connection
strings of a Target, the AWS secret key, a key file that is not PEM, secrets of the wrong type), every command runs
end to end against moto and the Azure emulator — with errors provoked on purpose — and stdout, stderr, plan files
(every format), journal, device state, history, lint (text, SARIF, JSON) and import output are searched: no hit.
The one place a secret must be is the device artifact that carries it to the device: the canary is asserted there
and only there."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.azure.conftest import emulator  # noqa: F401  (the session's Azure emulator on loopback)
from tests.conftest import run_cli
from tests.device.provider_support import Workspace, workspace

PSK = "CANARY-psk-5b1e07d2c4"  # env secret (three Wi-Fi models)
ADMIN = "CANARY-adm-9f0c"  # env secret, 16-byte register
MQTT = "CANARY-mq-71ab"  # {file:} secret from the allowed key folder
DUMP_PSK = "CANARY-dump-3c8d9e"  # a secret register as a dump read it back
AWS_KEY = "CANARY-aws-secret-4e2f8a9b1c"  # AWS_SECRET_ACCESS_KEY
BAD_KEY = "CANARY-not-a-pem-key-6d3a0b"  # content of a key file that is not PEM
WRONG_TYPE = "CANARY-port-2b7c"  # an env secret where an integer belongs
TOO_LONG = "CANARY-too-long-for-sixteen-bytes-8e1f"  # a {file:} secret that does not fit its register
BAD_CONN = "CANARY-conn-HostNam3-missing-51d2"  # an Azure connection string without HostName
DEVICE_CANARIES = [PSK, ADMIN, MQTT, DUMP_PSK]


def _forms(value: str) -> list[str]:
    """The value and the encodings an output might carry it in (hex as SpringCore artifacts, base64)."""
    data = value.encode()
    return [value, data.hex().upper(), data.hex(), base64.b64encode(data).decode()]


def _hits(text: str, canaries: list[str]) -> list[str]:
    return [c for c in canaries for form in _forms(c) if form in text]


def _git(root: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_AUTHOR_DATE": "2026-11-20T10:00:00Z",
        "GIT_COMMITTER_DATE": "2026-11-20T10:00:00Z",
    }
    subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)


def _device_workspace(tmp_path: Path) -> Workspace:
    ws = workspace(tmp_path)
    ws.env.update(
        {
            "FLEETCTL_WIFI_PSK": PSK,
            "FLEETCTL_SPRINGPARK_DA1275B0_ADMIN_PASSWORD": ADMIN,
            "AWS_SECRET_ACCESS_KEY": AWS_KEY,
            # the Azure Target is optional; set, its connection strings are planned (and fail: no HostName)
            "FLEETCTL_HUB_CONNECTION_STRING": BAD_CONN,
            "FLEETCTL_DPS_CONNECTION_STRING": BAD_CONN,
        }
    )
    (ws.keys / "mqtt.secret").write_text(MQTT + "\n")
    readers = ws.fleet / "devices" / "paris-readers.yaml"
    anchor = '    mqtt_client_options: "5614030A1E1E"'
    readers.write_text(
        readers.read_text().replace(
            anchor, anchor + "\n    mqtt_login: fleet\n    mqtt_password: {file: ~/.fleetctl/keys/mqtt.secret}"
        )
    )
    dump = ws.dumps / "24-0A-C4-5F-12-9C.json"
    doc = json.loads(dump.read_text())
    doc["nvs"]["wifi/pass"] = DUMP_PSK  # the device holds another PSK; the dump read it back
    dump.write_text(json.dumps(doc))
    return ws


def _break(ws: Workspace) -> Path:
    """A copy of the fleet with mistakes that involve secrets: a key file that is not PEM, an env secret where an
    integer belongs, a file secret too long for its register."""
    broken = ws.root / "broken"
    shutil.copytree(ws.fleet, broken)
    (ws.keys / "nina-D4CA6E0A1B2C.key").write_text(BAD_KEY + "\n")
    (ws.keys / "too-long.secret").write_text(TOO_LONG)
    esp = broken / "devices" / "esp32.yaml"
    esp.write_text(esp.read_text().replace("    mqtt_port: 8883", "    mqtt_port: {env: FLEETCTL_CANARY_PORT}"))
    readers = broken / "devices" / "paris-readers.yaml"
    readers.write_text(
        readers.read_text().replace("{file: ~/.fleetctl/keys/mqtt.secret}", "{file: ~/.fleetctl/keys/too-long.secret}")
    )
    ws.env["FLEETCTL_CANARY_PORT"] = WRONG_TYPE
    return broken


def test_no_device_or_aws_secret_in_any_output(aws_env, tmp_path: Path) -> None:
    ws = _device_workspace(tmp_path)
    _git(ws.root, "init", "-q")
    _git(ws.root, "add", "fleet")
    _git(ws.root, "commit", "-qm", "fleet")
    ws.env["FLEETCTL_GIT_COMMIT"] = ""
    outputs: dict[str, str] = {}

    def record(name: str, res) -> None:
        outputs[name] = res.stdout + res.stderr
        assert "Traceback" not in outputs[name] and "internal error" not in outputs[name], (name, outputs[name])

    record("validate", ws.cli("validate", str(ws.fleet)))
    for fmt in ("text", "markdown", "json"):
        res = ws.plan("--format", fmt, "--out", str(ws.root / f"plan-{fmt}.json"))
        record(f"plan-{fmt}", res)
        assert res.exit_code == 1 and not (ws.root / f"plan-{fmt}.json").exists()
    assert "has no HostName" in outputs["plan-text"]  # the provoked connection-string error, told plainly
    # the plan of the AWS and device changes, without the (broken) Azure Target
    ws.env.pop("FLEETCTL_HUB_CONNECTION_STRING"), ws.env.pop("FLEETCTL_DPS_CONNECTION_STRING")
    res = ws.plan("--format", "json", "--out", str(ws.root / "plan.json"))
    record("plan", res)
    assert res.exit_code == 0, res.output
    outputs["planfile"] = (ws.root / "plan.json").read_text()
    for fmt in ("text", "markdown", "json"):
        record(f"show-{fmt}", ws.cli("show", str(ws.root / "plan.json"), "--format", fmt))
    record("show-address", ws.cli("show", str(ws.root / "plan.json"), "--address", "device/*"))
    record("drift", ws.cli("drift", str(ws.fleet), "--dumps", str(ws.dumps), "--format", "json"))
    applied = ws.apply(ws.root / "plan.json")
    record("apply", applied)
    assert applied.exit_code == 0, applied.output
    outputs["journal-file"] = ws.journal.read_text()
    outputs["device-state"] = ws.state.read_text()
    for fmt in ("text", "json"):
        record(
            f"journal-{fmt}", ws.cli("journal", "--journal", str(ws.journal), "--fleet", str(ws.fleet), "--format", fmt)
        )
        record(f"history-{fmt}", ws.cli("history", "--fleet", str(ws.fleet), "--format", fmt))
    for fmt in ("text", "json", "sarif"):
        record(f"lint-{fmt}", ws.cli("lint", str(ws.fleet), "--format", fmt))
        record(f"lint-file-{fmt}", ws.cli("lint", str(ws.fleet), "--format", fmt, "-o", str(ws.root / f"lint.{fmt}")))
        outputs[f"lint.{fmt}"] = (ws.root / f"lint.{fmt}").read_text()
    imported = ws.root / "imported"
    bare = ws.root / "bare"  # a fleet that configures no device yet: every dump is imported
    bare.mkdir()
    shutil.copy(ws.fleet / "targets.yaml", bare / "targets.yaml")
    record("import", ws.cli("import", "--dumps", str(ws.dumps), "--out", str(imported), "--fleet", str(bare)))
    assert "Imported 6 device(s)" in outputs["import"], outputs["import"]
    secrets_list = (imported / "IMPORT-SECRETS.md").read_text()
    assert "FLEETCTL_ESP32_NVS_240AC45F129C_WIFI_PASS" in secrets_list or "WIFI_PASS" in secrets_list, secrets_list
    for path in sorted(imported.rglob("*")):
        if path.is_file():
            outputs[f"import:{path.name}"] = path.read_text()
    assert any(name.startswith("import:") for name in outputs)

    broken = _break(ws)
    record("validate-broken", ws.cli("validate", str(broken)))
    record("plan-broken", ws.cli("plan", str(broken), "--dumps", str(ws.dumps), "--out", str(ws.root / "b.json")))
    record("lint-broken", ws.cli("lint", str(broken), "--format", "sarif"))
    provoked = outputs["validate-broken"] + outputs["plan-broken"]
    assert "expects a PEM private key" in provoked and "that is not PEM" in provoked, provoked
    assert "(the value is sensitive and not shown)" in provoked, provoked  # the wrong-type and too-long secrets

    canaries = [*DEVICE_CANARIES, AWS_KEY, BAD_KEY, WRONG_TYPE, TOO_LONG, BAD_CONN]
    leaks = {name: _hits(text, canaries) for name, text in outputs.items() if _hits(text, canaries)}
    assert leaks == {}, leaks
    # the one exception: the device artifacts that carry the secrets to the devices hold them, 0600
    holders: dict[str, list[str]] = {}
    for path in sorted(ws.artifacts.rglob("*")):
        if path.is_file():
            found = _hits(path.read_text(), canaries)
            if found:
                holders[path.name] = sorted(set(found))
                assert (path.stat().st_mode & 0o077) == 0, path
    assert set(holders) == {
        "DA1275B0.json",
        "DA1275B1.json",
        "DA1275B2.json",
        "D4-CA-6E-0A-1B-2C.at",
        "00-80-E1-B7-3C-21.at",
        "24-0A-C4-5F-12-9C.csv",
    }, holders
    assert sorted({c for found in holders.values() for c in found}) == sorted([PSK, ADMIN, MQTT])
    assert DUMP_PSK not in str(holders)  # what the device held is replaced, never copied


AZURE_PRIMARY = base64.b64encode(b"CANARY-azure-primary-key-000001!").decode()
AZURE_GROUP = base64.b64encode(b"CANARY-azure-group-key-" + b"0" * 41).decode()


def test_no_azure_secret_in_any_output(emulator, tmp_path: Path, monkeypatch) -> None:  # noqa: F811
    emulator.reset()
    hub = emulator.hub_connection_string
    dps = emulator.dps_connection_string
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    (fleet / "targets.yaml").write_text(
        textwrap.dedent("""\
        apiVersion: fleetctl.io/v1
        kind: Target
        metadata: {name: hub}
        spec:
          azure:
            hub: {hostName: fleetctl-sandbox-hub.azure-devices.net, connectionString: {env: HUB}}
            dps: {hostName: fleetctl-sandbox-dps.azure-devices-provisioning.net, idScope: 0ne0067E45C,
                  connectionString: {file: ~/.fleetctl/keys/dps.connection}}
          files: {allow: ["~/.fleetctl/keys"]}
        """)
    )
    (fleet / "devices.yaml").write_text(
        textwrap.dedent("""\
        apiVersion: azure.fleetctl.io/v1
        kind: Device
        metadata: {name: keyed, target: hub}
        spec:
          authentication: {type: symmetricKey, primaryKey: {env: PRIMARY}}
        ---
        apiVersion: azure.fleetctl.io/v1
        kind: EnrollmentGroup
        metadata: {name: key-group, target: hub}
        spec:
          attestation: {symmetricKey: {primaryKey: {env: GROUP}}}
        """)
    )
    home = tmp_path / "home"
    (home / ".fleetctl" / "keys").mkdir(parents=True)
    (home / ".fleetctl" / "keys" / "dps.connection").write_text(dps + "\n")
    env = {
        "HUB": hub,
        "PRIMARY": AZURE_PRIMARY,
        "GROUP": AZURE_GROUP,
        "HOME": str(home),
        "REQUESTS_CA_BUNDLE": emulator.ca_bundle,
        "FLEETCTL_ARM_ENDPOINT": emulator.arm_base_url,
        **emulator.entra_env(),
        "FLEETCTL_JOURNAL": str(tmp_path / "journal.jsonl"),
        "FLEETCTL_NOW": "2026-11-21T10:00:00Z",
        "FLEETCTL_GIT_COMMIT": "0123456789abcdef0123456789abcdef01234567",
        "FLEETCTL_ACTOR": "ci-test",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    outputs: dict[str, str] = {}

    def record(name: str, res) -> None:
        outputs[name] = res.stdout + res.stderr
        assert "Traceback" not in outputs[name] and "internal error" not in outputs[name], (name, outputs[name])

    record("validate", run_cli("validate", str(fleet)))
    for fmt in ("text", "markdown", "json"):
        res = run_cli("plan", str(fleet), "--format", fmt, "--out", str(tmp_path / "p.json"))
        record(f"plan-{fmt}", res)
        assert res.exit_code in (0, 2), res.output
        outputs[f"planfile-{fmt}"] = (tmp_path / "p.json").read_text()
    record("show", run_cli("show", str(tmp_path / "p.json")))
    applied = run_cli("apply", str(tmp_path / "p.json"), "--fleet", str(fleet))
    record("apply", applied)
    assert applied.exit_code == 0, applied.output
    monkeypatch.setenv("PRIMARY", base64.b64encode(b"CANARY-azure-rotated-key-00002!!").decode())
    record("plan-rotated", run_cli("plan", str(fleet), "--out", str(tmp_path / "r.json")))
    assert "primaryKey: (sensitive) → (sensitive)" in outputs["plan-rotated"]
    outputs["planfile-rotated"] = (tmp_path / "r.json").read_text()
    record("drift", run_cli("drift", str(fleet), "--format", "json"))
    record("journal", run_cli("journal", "--journal", env["FLEETCTL_JOURNAL"], "--fleet", str(fleet)))
    outputs["journal-file"] = Path(env["FLEETCTL_JOURNAL"]).read_text()
    for fmt in ("text", "json", "sarif"):
        record(f"lint-{fmt}", run_cli("lint", str(fleet), "--format", fmt))
    out = tmp_path / "imported"
    record("import", run_cli("import", "--target", "hub", "--out", str(out), "--fleet", str(fleet)))
    for path in sorted(out.rglob("*")):
        if path.is_file():
            outputs[f"import:{path.name}"] = path.read_text()
    # provoked: a connection string without HostName, a DPS connection-string file that is not one
    monkeypatch.setenv("HUB", BAD_CONN)
    record("plan-bad-connection", run_cli("plan", str(fleet)))
    assert "has no HostName" in outputs["plan-bad-connection"]
    monkeypatch.setenv("PRIMARY", WRONG_TYPE)
    record("validate-bad-key", run_cli("validate", str(fleet)))

    shared_key = hub.split("SharedAccessKey=", 1)[1].split(";")[0]
    dps_key = dps.split("SharedAccessKey=", 1)[1].split(";")[0]
    canaries = [
        AZURE_PRIMARY,
        AZURE_GROUP,
        BAD_CONN,
        WRONG_TYPE,
        shared_key,
        dps_key,
        hub,
        dps,
        base64.b64encode(b"CANARY-azure-rotated-key-00002!!").decode(),
    ]
    leaks = {
        name: [c for c in canaries if c in text]
        for name, text in outputs.items()
        if any(c in text for c in canaries) or "CANARY" in text
    }
    assert leaks == {}, leaks


@pytest.mark.parametrize(
    "value",
    [
        '"HostName=h.azure-devices.net;SharedAccessKeyName=owner;SharedAccessKey=CANARY-literal-key"',  # pasted literal
        '{env: "HostName=h.azure-devices.net;SharedAccessKey=CANARY-in-the-env-field"}',  # in the wrong place
        '{env: FLEETCTL_HUB, file: "CANARY-second-ref"}',  # two references
        "[CANARY-in-a-list]",
    ],
)
def test_a_misplaced_secret_is_never_quoted_by_validation(tmp_path: Path, value: str) -> None:
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    (fleet / "t.yaml").write_text(
        textwrap.dedent(f"""\
        apiVersion: fleetctl.io/v1
        kind: Target
        metadata: {{name: az}}
        spec:
          azure:
            hub:
              hostName: h.azure-devices.net
              connectionString: {value}
        """)
    )
    for fmt in ("text", "json", "sarif"):
        res = run_cli("lint", str(fleet), "--format", fmt) if fmt != "text" else run_cli("validate", str(fleet))
        assert "CANARY" not in res.output, res.output
        assert "Traceback" not in res.output
    res = run_cli("validate", str(fleet))
    assert res.exit_code == 1 and "fleet/t.yaml:8:" in res.stderr, res.stderr
