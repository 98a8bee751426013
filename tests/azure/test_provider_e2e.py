"""The Azure provider end to end: the real CLI and engine, the real Azure SDKs, the emulators over HTTPS.

Each test writes a small fleet (an Azure Target and manifests) into a temporary folder, with certificates generated
at run time (engine.sandbox.certs; the keys stay in memory), and drives `fleetctl validate | plan | apply | drift`
in-process. What the services hold afterwards is read back through AzureClient, never through the provider under
test.
"""

from __future__ import annotations

import base64
import json
import re
import textwrap
from pathlib import Path

import pytest

from engine import run
from engine.journal import read_entries
from engine.manifest.fleet import load_fleet
from engine.pki import cert_info
from engine.plan.model import load_plan
from engine.providers.azure.client import ArmTarget, AzureClient
from engine.sandbox.azure import AzureEmulator
from engine.sandbox.azure.arm import sandbox_verification_code
from engine.sandbox.certs import Issued, issue, make_ca, verification_certificate
from tests.conftest import run_cli

HUB_HOST = "fleetctl-sandbox-hub.azure-devices.net"
TARGET = f"""\
apiVersion: fleetctl.io/v1
kind: Target
metadata: {{name: hub}}
spec:
  azure:
    hub: {{hostName: {HUB_HOST}, connectionString: {{env: FLEETCTL_HUB_CONNECTION_STRING}}}}
    dps: {{hostName: fleetctl-sandbox-dps.azure-devices-provisioning.net, idScope: 0ne0067E45C,
          connectionString: {{env: FLEETCTL_DPS_CONNECTION_STRING}}}}
    arm: {{subscriptionId: 00000000-0000-0000-0000-000000000000, resourceGroup: fleetctl-sandbox,
          hubName: fleetctl-sandbox-hub}}
"""
# keys the manifests reference through the environment (base64, 32 and 64 bytes as IoT Hub and DPS make them)
KEYS = {
    "DEVICE_PRIMARY": base64.b64encode(b"p" * 31 + b"!").decode(),
    "DEVICE_SECONDARY": base64.b64encode(b"s" * 31 + b"?").decode(),
    "GROUP_PRIMARY": base64.b64encode(b"g" * 63 + b"#").decode(),
}


@pytest.fixture
def azure_env(emulator: AzureEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """The sandbox settings `fleetctl sandbox up` exports, pointing at the session's emulator, and a private journal."""
    env = {
        "FLEETCTL_HUB_CONNECTION_STRING": emulator.hub_connection_string,
        "FLEETCTL_DPS_CONNECTION_STRING": emulator.dps_connection_string,
        "REQUESTS_CA_BUNDLE": emulator.ca_bundle,
        "FLEETCTL_ARM_ENDPOINT": emulator.arm_base_url,
        **emulator.entra_env(),
        "FLEETCTL_JOURNAL": str(tmp_path / "journal.jsonl"),
        "FLEETCTL_NOW": "2026-11-21T10:00:00Z",
        "FLEETCTL_GIT_COMMIT": "0123456789abcdef0123456789abcdef01234567",
        "FLEETCTL_ACTOR": "ci-test",
        **KEYS,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("FLEETCTL_ARM_TOKEN", raising=False)
    return env


@pytest.fixture
def fixed_codes(emulator: AzureEmulator):
    """The sandbox's demo mode: every verification code is sandbox_verification_code() (Azure's are random)."""
    emulator.configure(fixed_verification_codes=True)
    yield sandbox_verification_code(emulator.subscription_id, emulator.hub_name)
    emulator.configure(fixed_verification_codes=False)


@pytest.fixture
def client(emulator: AzureEmulator) -> AzureClient:
    arm = ArmTarget(
        emulator.arm_base_url,
        emulator.subscription_id,
        emulator.resource_group,
        emulator.hub_name,
        emulator.credential(),
    )
    return AzureClient(emulator.hub_connection_string, emulator.dps_connection_string, arm, emulator.ca_bundle)


class Fleet:
    """A fleet folder: the Target, manifests written by the test, and public certificates under certs/."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "certs").mkdir(parents=True)
        (root / "targets.yaml").write_text(TARGET)

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(textwrap.dedent(text))
        return path

    def cert(self, name: str, issued: Issued) -> str:
        (self.root / "certs" / f"{name}.pem").write_text(issued.pem)
        return f"certs/{name}.pem"

    def edit(self, name: str, old: str, new: str) -> None:
        path = self.root / name
        text = path.read_text()
        assert old in text, f"{old!r} not in {name}"
        path.write_text(text.replace(old, new, 1))

    def plan(self, *extra: str):
        return run_cli("plan", str(self.root), "--detailed-exitcode", *extra)

    def apply(self, *extra: str):
        return run_cli("apply", str(self.root), "--auto-approve", *extra)

    def apply_file(self, plan_file: Path):
        return run_cli("apply", str(plan_file), "--fleet", str(self.root))


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    return Fleet(tmp_path / "fleet")


@pytest.fixture
def ca() -> Issued:
    return make_ca({"CN": "fleetctl e2e root CA", "O": "fleetctl"})


def _twin(client: AzureClient, device_id: str) -> dict:
    return client.get_twin(device_id)


# -------------------------------------------------------------------------------------------- every kind
EVERY_KIND = """\
apiVersion: azure.fleetctl.io/v1
kind: HubCertificate
metadata: {name: rootca, target: hub}
spec:
  certificatePem: {file: certs/rootca.pem}
  verificationCertificatePem: {file: certs/rootca-verification.pem}
---
apiVersion: azure.fleetctl.io/v1
kind: Device
metadata: {name: device1, target: hub}
spec:
  authentication: {type: x509CA, certificatePem: {file: certs/device1.pem}, caCertificate: rootca}
  tags: {site: paris, floor: {level: -2}}
  desired: {telemetryInterval: 30}
---
apiVersion: azure.fleetctl.io/v1
kind: Device
metadata: {name: self-signed, target: hub}
spec:
  authentication: {type: selfSigned, certificatePem: {file: certs/self-signed.pem}}
  status: disabled
---
apiVersion: azure.fleetctl.io/v1
kind: Device
metadata: {name: keyed, target: hub}
spec:
  authentication:
    type: symmetricKey
    primaryKey: {env: DEVICE_PRIMARY}
    secondaryKey: {env: DEVICE_SECONDARY}
  iotEdge: true
---
apiVersion: azure.fleetctl.io/v1
kind: Device
metadata: {name: device2, target: hub}
spec:
  authentication: {type: symmetricKey}
  desired: {telemetryInterval: 60, mode: {eco: true}}
---
apiVersion: azure.fleetctl.io/v1
kind: EnrollmentGroup
metadata: {name: dps-group, target: hub}
spec:
  attestation: {x509: {caCertificate: rootca}}
  allocationPolicy: hashed
  iotHubs: [fleetctl-sandbox-hub.azure-devices.net]
  reprovisionPolicy: {updateHubAssignment: true}
  initialTwin: {tags: {fleet: nina}, desired: {telemetryInterval: 30}}
---
apiVersion: azure.fleetctl.io/v1
kind: EnrollmentGroup
metadata: {name: signed-group, target: hub}
spec:
  attestation: {x509: {signingCertificatePem: {file: certs/rootca.pem}}}
  allocationPolicy: static
  iotHubs: [fleetctl-sandbox-hub.azure-devices.net]
  iotEdge: true
---
apiVersion: azure.fleetctl.io/v1
kind: EnrollmentGroup
metadata: {name: key-group, target: hub}
spec:
  attestation: {symmetricKey: {primaryKey: {env: GROUP_PRIMARY}}}
  allocationPolicy: custom
  customAllocationDefinition: {webhookUrl: "https://alloc.example.net/api/allocate", apiVersion: "2021-10-01"}
  provisioningStatus: disabled
---
apiVersion: azure.fleetctl.io/v1
kind: Enrollment
metadata: {name: ninadps, target: hub}
spec:
  attestation: {x509: {certificatePem: {file: certs/ninadps.pem}}}
  deviceId: nina-dps-1
  initialTwin: {tags: {site: lyon}}
---
apiVersion: azure.fleetctl.io/v1
kind: Enrollment
metadata: {name: sensor-enrollment, target: hub}
spec:
  registrationId: Sensor-01
  attestation: {symmetricKey: {}}
  allocationPolicy: geoLatency
"""


def declare_every_kind(fleet: Fleet, ca: Issued, code: str) -> Issued:
    fleet.cert("rootca", ca)
    fleet.cert("rootca-verification", verification_certificate(ca, code))
    fleet.cert("device1", issue({"CN": "device1"}, ca))
    self_signed = make_ca("self-signed")
    fleet.cert("self-signed", self_signed)
    fleet.cert("ninadps", issue("ninadps", ca))
    fleet.write("azure.yaml", EVERY_KIND)
    return self_signed


def test_plan_apply_plan_is_empty_for_every_kind(azure_env, fleet, ca, fixed_codes, client, tmp_path):
    self_signed = declare_every_kind(fleet, ca, fixed_codes)
    first = fleet.plan("--out", str(tmp_path / "plan.json"))
    assert first.exit_code == 2, first.output
    changes = json.loads((tmp_path / "plan.json").read_text())["changes"]
    assert {c["kind"] for c in changes} == {
        "azure.HubCertificate",
        "azure.Device",
        "azure.EnrollmentGroup",
        "azure.Enrollment",
    }
    assert all(c["action"] == "create" for c in changes) and len(changes) == 10
    order = [c["address"].split("/", 2)[2] for c in changes]
    assert order.index("HubCertificate/rootca") < order.index("EnrollmentGroup/dps-group")
    assert order.index("HubCertificate/rootca") < order.index("Device/device1")
    applied = fleet.apply_file(tmp_path / "plan.json")
    assert applied.exit_code == 0, applied.output
    assert "10 applied, 0 failed, 0 skipped" in applied.stdout
    again = fleet.plan()
    assert again.exit_code == 0, again.output
    assert "No changes." in again.stdout

    # what the services hold is what the manifests say
    certificate = client.get_hub_certificate("rootca")["properties"]
    assert certificate["isVerified"] is True
    twin = _twin(client, "device1")
    assert twin["authenticationType"] == "certificateAuthority" and twin["status"] == "enabled"
    assert twin["tags"] == {"site": "paris", "floor": {"level": -2}, "fleetctl": {"managed": True}}
    assert twin["properties"]["desired"]["telemetryInterval"] == 30
    signed = client.get_device("self-signed")
    assert signed["authentication"]["x509Thumbprint"]["primaryThumbprint"] == cert_info(self_signed.pem).sha1
    assert signed["status"] == "disabled"
    keyed = client.get_device("keyed")
    assert keyed["authentication"]["symmetricKey"] == {
        "primaryKey": KEYS["DEVICE_PRIMARY"],
        "secondaryKey": KEYS["DEVICE_SECONDARY"],
    }
    assert keyed["capabilities"]["iotEdge"] is True
    group = client.get_enrollment_group("dps-group")
    assert group["attestation"]["x509"] == {"caReferences": {"primary": "rootca", "secondary": None}}
    assert group["allocationPolicy"] == "hashed" and group["iotHubs"] == [HUB_HOST]
    assert group["initialTwin"]["tags"] == {"fleet": "nina", "fleetctl": {"provisionedBy": "EnrollmentGroup/dps-group"}}
    assert group["reprovisionPolicy"] == {"updateHubAssignment": True, "migrateDeviceData": True}
    assert (
        client.get_enrollment_group("signed-group")["attestation"]["x509"]["signingCertificates"]["primary"]["info"][
            "sha1Thumbprint"
        ]
        == cert_info(ca.pem).sha1
    )
    assert client.get_enrollment_group_attestation("key-group")["symmetricKey"]["primaryKey"] == KEYS["GROUP_PRIMARY"]
    assert client.get_enrollment_group("key-group")["customAllocationDefinition"]["apiVersion"] == "2021-10-01"
    enrollment = client.get_enrollment("ninadps")
    assert enrollment["deviceId"] == "nina-dps-1" and enrollment["attestation"]["type"] == "x509"
    assert client.get_enrollment("sensor-01")["registrationId"] == "Sensor-01"  # DPS ids ignore case


def test_plan_shows_the_steps_and_is_deterministic(azure_env, fleet, ca, fixed_codes, tmp_path):
    declare_every_kind(fleet, ca, fixed_codes)
    fleet.plan("--out", str(tmp_path / "a.json"))
    fleet.plan("--out", str(tmp_path / "b.json"))
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    text = fleet.plan().stdout
    assert "step: generate a verification code (If-Match etag)" in text
    assert f"step: verify with verificationCertificatePem (CN {fixed_codes}) if that is the hub's code" in text
    assert "step: create the identity with its twin tags, desired properties and the ownership tag" in text
    assert "primaryKey: (sensitive)" in text


# ------------------------------------------------------------------------------------- proof of possession
POP = """\
apiVersion: azure.fleetctl.io/v1
kind: HubCertificate
metadata: {name: rootca, target: hub}
spec:
  certificatePem: {file: certs/rootca.pem}
---
apiVersion: azure.fleetctl.io/v1
kind: Device
metadata: {name: device1, target: hub}
spec:
  authentication: {type: x509CA, certificatePem: {file: certs/device1.pem}, caCertificate: rootca}
"""


def test_proof_of_possession_takes_the_code_the_hub_issues_after_the_upload(azure_env, fleet, ca, client, tmp_path):
    """Azure issues the verification code only after the upload (random, as the emulator does by default): the
    first apply uploads and reports the code, the operator signs it outside fleetctl, the next apply verifies."""
    fleet.cert("rootca", ca)
    fleet.cert("device1", issue("device1", ca))
    fleet.write("azure.yaml", POP)
    first = fleet.apply()
    assert first.exit_code == 1, first.output
    found = re.search(
        r"rootca: ProofOfPossessionPending: the certificate is uploaded but not verified: the hub's "
        r"verification code is ([0-9A-F]{48})\. Make a certificate with CN=\1",
        first.stderr,
    )
    assert found, first.stderr
    assert "skipped: azure/hub/Device/device1 (a change it depends on failed)" in first.stderr
    code = found.group(1)
    assert client.get_hub_certificate("rootca")["properties"]["isVerified"] is False
    journal = read_entries(Path(azure_env["FLEETCTL_JOURNAL"]))
    failures = [e for e in journal if e["event"] == "failure" and "op" not in e]
    assert [(e["address"], code in e["error"]) for e in failures] == [("azure/hub/HubCertificate/rootca", True)]

    pending = fleet.plan()
    assert pending.exit_code == 2
    assert "~ azure/hub/HubCertificate/rootca" in pending.stdout and "isVerified: false → true" in pending.stdout
    # the pending verification is a plan state: the code the last apply was issued (journal) and how to sign it
    assert f"step: pending proof of possession: the hub's current verification code is {code}; sign it" in " ".join(
        pending.stdout.split()
    )

    fleet.cert("rootca-verification", verification_certificate(ca, code))  # outside fleetctl, with the CA key
    fleet.edit(
        "azure.yaml",
        "  certificatePem: {file: certs/rootca.pem}\n",
        "  certificatePem: {file: certs/rootca.pem}\n"
        "  verificationCertificatePem: {file: certs/rootca-verification.pem}\n",
    )
    ready = fleet.plan("--out", str(tmp_path / "verify.json"))
    assert ready.exit_code == 2 and f"step: verify with verificationCertificatePem (CN {code})" in ready.stdout
    applied = fleet.apply_file(tmp_path / "verify.json")
    assert applied.exit_code == 0, applied.output
    assert client.get_hub_certificate("rootca")["properties"]["isVerified"] is True
    assert client.get_device("device1")["authentication"]["type"] == "certificateAuthority"
    assert fleet.plan().exit_code == 0


def test_a_stale_verification_certificate_gets_a_fresh_code(azure_env, fleet, ca, client):
    fleet.cert("rootca", ca)
    fleet.cert("device1", issue("device1", ca))
    fleet.cert("rootca-verification", verification_certificate(ca, "0" * 48))  # signed for another code
    fleet.write(
        "azure.yaml",
        POP.replace(
            "  certificatePem: {file: certs/rootca.pem}\n",
            "  certificatePem: {file: certs/rootca.pem}\n"
            "  verificationCertificatePem: {file: certs/rootca-verification.pem}\n",
        ),
    )
    first = fleet.apply()
    assert first.exit_code == 1 and "ProofOfPossessionPending" in first.stderr
    code = re.search(r"verification code is ([0-9A-F]{48})", first.stderr).group(1)
    second = fleet.apply()  # still the old certificate: verify fails, a new code is issued and reported
    assert second.exit_code == 1
    fresh = re.search(r"verification code is ([0-9A-F]{48})", second.stderr).group(1)
    assert fresh != code
    fleet.cert("rootca-verification", verification_certificate(ca, fresh))
    assert fleet.apply().exit_code == 0
    assert client.get_hub_certificate("rootca")["properties"]["isVerified"] is True


def test_a_new_ca_certificate_replaces_the_old_one_and_is_proven_again(azure_env, fleet, ca, fixed_codes, client):
    declare_every_kind(fleet, ca, fixed_codes)
    assert fleet.apply().exit_code == 0
    rotated = make_ca({"CN": "fleetctl e2e root CA 2"})
    fleet.cert("rootca", rotated)
    fleet.cert("rootca-verification", verification_certificate(rotated, fixed_codes))
    fleet.cert("device1", issue({"CN": "device1"}, rotated))
    fleet.cert("ninadps", issue("ninadps", rotated))
    res = fleet.plan()
    assert res.exit_code == 2
    assert "~ azure/hub/HubCertificate/rootca" in res.stdout
    assert "step: replace the certificate (If-Match etag); the hub resets isVerified to false" in res.stdout
    assert fleet.apply().exit_code == 0
    props = client.get_hub_certificate("rootca")["properties"]
    assert props["subject"] == "CN=fleetctl e2e root CA 2" and props["isVerified"] is True
    assert fleet.plan().exit_code == 0


# ------------------------------------------------------------------------------------------------ drift
DEVICES = """\
apiVersion: azure.fleetctl.io/v1
kind: Device
metadata: {name: device2, target: hub}
spec:
  authentication: {type: symmetricKey}
  tags: {site: paris}
  desired: {telemetryInterval: 30, mode: {eco: true}}
---
apiVersion: azure.fleetctl.io/v1
kind: Device
metadata: {name: device3, target: hub}
spec:
  tags: {site: lyon}
"""


def test_twin_drift_names_the_field_and_reported_properties_are_not_drift(azure_env, fleet, client, emulator):
    fleet.write("devices.yaml", DEVICES)
    assert fleet.apply().exit_code == 0
    emulator.report_properties("device2", {"telemetryInterval": 45, "firmware": "3.1.0"})  # the device itself
    client.update_twin("device2", {"tags": {"owner": "ops"}, "properties": {"desired": {"unmanaged": 1}}}, None)
    assert run_cli("drift", str(fleet.root)).exit_code == 0  # reported, and paths no manifest declares: in sync

    client.update_twin("device2", {"properties": {"desired": {"telemetryInterval": 60, "mode": {"eco": False}}}}, None)
    res = run_cli("drift", str(fleet.root))
    assert res.exit_code == 2, res.output
    assert "azure/hub/Device/device2: differs" in res.stdout
    assert "~ desired.telemetryInterval: 30 → 60" in res.stdout  # manifest → actual
    assert "~ desired.mode.eco: true → false" in res.stdout
    as_json = json.loads(run_cli("drift", str(fleet.root), "--format", "json").stdout)
    assert [f["path"] for f in as_json["drift"][0]["fields"]] == ["desired.mode.eco", "desired.telemetryInterval"]

    assert fleet.apply().exit_code == 0
    twin = _twin(client, "device2")
    assert twin["properties"]["desired"]["telemetryInterval"] == 30 and twin["properties"]["desired"]["unmanaged"] == 1
    assert twin["tags"]["owner"] == "ops"  # not fleetctl's: kept
    assert twin["properties"]["reported"]["firmware"] == "3.1.0"  # never touched
    assert run_cli("drift", str(fleet.root)).exit_code == 0


def test_identity_drift_status_disabled_out_of_band(azure_env, fleet, client):
    fleet.write("devices.yaml", DEVICES)
    assert fleet.apply().exit_code == 0
    device = client.get_device("device3")
    keys = device["authentication"]["symmetricKey"]
    client.update_device("device3", {"type": "sas", **keys}, "disabled", False, device["etag"])
    res = run_cli("drift", str(fleet.root))
    assert res.exit_code == 2 and '~ status: "enabled" → "disabled"' in res.stdout
    plan = fleet.plan()
    assert "step: update the identity: status (If-Match etag, keeping the keys the service generated)" in plan.stdout
    assert fleet.apply().exit_code == 0
    after = client.get_device("device3")
    assert after["status"] == "enabled" and after["authentication"]["symmetricKey"] == keys  # keys unchanged


# ------------------------------------------------------------------------------------------- stale plans
def test_saved_plan_is_stale_when_the_device_etag_changed(azure_env, fleet, client, tmp_path):
    fleet.write("devices.yaml", DEVICES)
    assert fleet.apply().exit_code == 0
    fleet.edit("devices.yaml", "tags: {site: lyon}", "tags: {site: lyon, floor: '2'}")
    assert fleet.plan("--out", str(tmp_path / "p.json")).exit_code == 2
    plan = json.loads((tmp_path / "p.json").read_text())
    device = client.get_device("device3")
    assert plan["changes"][0]["fingerprint"].startswith(device["etag"] + ":")  # the etag is the token
    client.update_device(
        "device3", {"type": "sas", **device["authentication"]["symmetricKey"]}, "enabled", False, device["etag"]
    )  # a concurrent write: same values, new etag
    res = fleet.apply_file(tmp_path / "p.json")
    assert res.exit_code == 1
    assert "plan is stale, re-run plan" in res.stderr and "azure/hub/Device/device3" in res.stderr
    assert "floor" not in _twin(client, "device3").get("tags", {})  # nothing was written
    assert fleet.plan("--out", str(tmp_path / "p2.json")).exit_code == 2
    assert fleet.apply_file(tmp_path / "p2.json").exit_code == 0
    assert _twin(client, "device3")["tags"]["floor"] == "2"


def test_saved_plan_survives_reported_properties_but_not_a_managed_twin_change(
    azure_env, fleet, client, emulator, tmp_path
):
    fleet.write("devices.yaml", DEVICES)
    assert fleet.apply().exit_code == 0
    fleet.edit("devices.yaml", "telemetryInterval: 30", "telemetryInterval: 10")
    assert fleet.plan("--out", str(tmp_path / "p.json")).exit_code == 2
    emulator.report_properties("device2", {"battery": 80})  # the twin etag moves; the plan is not stale for it
    res = fleet.apply_file(tmp_path / "p.json")
    assert res.exit_code == 0, res.output
    operations = emulator.stats()["operations"]
    assert operations["PATCH /twins/{device_id}"] == 2 and operations["GET /twins/{device_id}"] == 1  # 412, re-read
    assert _twin(client, "device2")["properties"]["desired"]["telemetryInterval"] == 10
    assert fleet.plan().exit_code == 0

    fleet.edit("devices.yaml", "telemetryInterval: 10", "telemetryInterval: 20")
    assert fleet.plan("--out", str(tmp_path / "p2.json")).exit_code == 2
    client.update_twin("device2", {"properties": {"desired": {"telemetryInterval": 99}}}, None)
    res = fleet.apply_file(tmp_path / "p2.json")
    assert res.exit_code == 1 and "plan is stale" in res.stderr
    assert _twin(client, "device2")["properties"]["desired"]["telemetryInterval"] == 99


# ---------------------------------------------------------------------------------------------- secrets
SECRET_DEVICES = """\
apiVersion: azure.fleetctl.io/v1
kind: Device
metadata: {name: keyed, target: hub}
spec:
  authentication: {type: symmetricKey, primaryKey: {env: DEVICE_PRIMARY}, secondaryKey: {env: DEVICE_SECONDARY}}
---
apiVersion: azure.fleetctl.io/v1
kind: Device
metadata: {name: service-keys, target: hub}
spec:
  authentication: {type: symmetricKey}
---
apiVersion: azure.fleetctl.io/v1
kind: EnrollmentGroup
metadata: {name: key-group, target: hub}
spec:
  attestation: {symmetricKey: {primaryKey: {env: GROUP_PRIMARY}}}
---
apiVersion: azure.fleetctl.io/v1
kind: Enrollment
metadata: {name: sensor-1, target: hub}
spec:
  attestation: {symmetricKey: {}}
"""


def test_symmetric_keys_never_appear_in_any_output(azure_env, fleet, client, monkeypatch, tmp_path):
    fleet.write("secrets.yaml", SECRET_DEVICES)
    outputs = []
    created = fleet.plan("--out", str(tmp_path / "create.json"))
    outputs += [created.output, (tmp_path / "create.json").read_text()]
    applied = fleet.apply_file(tmp_path / "create.json")
    assert applied.exit_code == 0, applied.output
    outputs.append(applied.output)
    generated = [
        client.get_device("service-keys")["authentication"]["symmetricKey"]["primaryKey"],
        client.get_enrollment_attestation("sensor-1")["symmetricKey"]["primaryKey"],
        client.get_enrollment_group_attestation("key-group")["symmetricKey"]["secondaryKey"],
    ]
    assert fleet.plan().exit_code == 0

    rotated = base64.b64encode(b"r" * 32).decode()
    monkeypatch.setenv("DEVICE_PRIMARY", rotated)
    monkeypatch.setenv("GROUP_PRIMARY", base64.b64encode(b"R" * 64).decode())
    rotation = fleet.plan("--out", str(tmp_path / "rotate.json"))
    assert rotation.exit_code == 2
    assert "primaryKey: (sensitive) → (sensitive)" in rotation.stdout
    changed = {c["address"] for c in json.loads((tmp_path / "rotate.json").read_text())["changes"]}
    assert changed == {"azure/hub/Device/keyed", "azure/hub/EnrollmentGroup/key-group"}
    outputs += [rotation.output, (tmp_path / "rotate.json").read_text()]
    for fmt in ("markdown", "json"):
        outputs.append(fleet.plan("--format", fmt).stdout)
        outputs.append(run_cli("drift", str(fleet.root), "--format", fmt).stdout)
    res = fleet.apply_file(tmp_path / "rotate.json")
    assert res.exit_code == 0, res.output
    outputs.append(res.output)
    assert client.get_device("keyed")["authentication"]["symmetricKey"]["primaryKey"] == rotated
    assert client.get_device("keyed")["authentication"]["symmetricKey"]["secondaryKey"] == KEYS["DEVICE_SECONDARY"]
    assert client.get_device("service-keys")["authentication"]["symmetricKey"]["primaryKey"] == generated[0]
    assert fleet.plan().exit_code == 0
    outputs.append(Path(azure_env["FLEETCTL_JOURNAL"]).read_text())
    everything = "\n".join(outputs)
    for secret in [*KEYS.values(), rotated, *generated]:
        assert secret not in everything


# --------------------------------------------------------------------------------------------------- prune
def test_prune_deletes_managed_devices_only(azure_env, fleet, client, tmp_path):
    fleet.write("devices.yaml", DEVICES)
    assert fleet.apply().exit_code == 0
    client.create_device("hand-made", {"type": "sas"})  # no ownership tag
    fleet.write("devices.yaml", DEVICES.split("---")[0])  # device3 no longer declared
    kept = fleet.plan()
    assert kept.exit_code == 0, kept.output  # prune is off: kept, with a warning
    assert "azure/hub/Device/device3: managed by fleetctl but no longer declared" in kept.stdout
    assert "azure/hub/Device/hand-made" in kept.stdout and "unmanaged" in kept.stdout
    res = fleet.plan("--prune", "--out", str(tmp_path / "p.json"))
    assert res.exit_code == 2
    changes = json.loads((tmp_path / "p.json").read_text())["changes"]
    assert [(c["address"], c["action"], c["steps"]) for c in changes] == [
        ("azure/hub/Device/device3", "delete", ["delete the device (If-Match etag)"])
    ]
    assert fleet.apply_file(tmp_path / "p.json").exit_code == 0
    assert sorted(t["deviceId"] for t in client.query_devices()) == ["device2", "hand-made"]
    assert fleet.plan("--prune").exit_code == 0


def test_prune_deletes_managed_enrollments_only(azure_env, fleet, client, tmp_path):
    fleet.write("dps.yaml", SECRET_DEVICES.split("---", 2)[2])
    assert fleet.apply().exit_code == 0
    client.put_enrollment("console-made", {"attestation": {"type": "symmetricKey"}})
    fleet.write("dps.yaml", "")
    res = fleet.plan("--prune", "--out", str(tmp_path / "p.json"))
    assert res.exit_code == 2
    deleted = sorted(c["address"] for c in json.loads((tmp_path / "p.json").read_text())["changes"])
    assert deleted == ["azure/hub/Enrollment/sensor-1", "azure/hub/EnrollmentGroup/key-group"]
    assert fleet.apply_file(tmp_path / "p.json").exit_code == 0
    assert [e["registrationId"] for e in client.list_enrollments()] == ["console-made"]
    assert client.list_enrollment_groups() == []


# ----------------------------------------------------------------------------------------- DPS updates
def test_dps_update_keeps_what_the_manifest_leaves_out(azure_env, fleet, client):
    fleet.write(
        "dps.yaml",
        """\
        apiVersion: azure.fleetctl.io/v1
        kind: EnrollmentGroup
        metadata: {name: key-group, target: hub}
        spec:
          attestation: {symmetricKey: {}}
          initialTwin: {tags: {fleet: a}}
        """,
    )
    assert fleet.apply().exit_code == 0
    keys = client.get_enrollment_group_attestation("key-group")["symmetricKey"]
    current = client.get_enrollment_group("key-group")
    client.put_enrollment_group(
        "key-group",
        {**current, "allocationPolicy": "geoLatency", "attestation": {"type": "symmetricKey", "symmetricKey": keys}},
        current["etag"],
    )  # set in the portal
    assert fleet.plan().exit_code == 0  # not declared: not managed
    fleet.edit("dps.yaml", "tags: {fleet: a}", "tags: {fleet: b}")
    res = fleet.plan()
    assert 'initialTwin.tags.fleet: "a" → "b"' in res.stdout
    assert "replace the enrollment group (If-Match etag), keeping the fields the manifest leaves out" in res.stdout
    assert fleet.apply().exit_code == 0
    after = client.get_enrollment_group("key-group")
    assert after["allocationPolicy"] == "geoLatency"
    assert after["initialTwin"]["tags"] == {"fleet": "b", "fleetctl": {"provisionedBy": "EnrollmentGroup/key-group"}}
    assert client.get_enrollment_group_attestation("key-group")["symmetricKey"] == keys  # the service's keys kept
    assert fleet.plan().exit_code == 0


def test_changing_a_registration_id_replaces_the_enrollment(azure_env, fleet, client):
    fleet.write(
        "dps.yaml",
        """\
        apiVersion: azure.fleetctl.io/v1
        kind: Enrollment
        metadata: {name: sensor, target: hub}
        spec:
          registrationId: sensor-a
          attestation: {symmetricKey: {}}
        """,
    )
    assert fleet.apply().exit_code == 0
    fleet.edit("dps.yaml", "registrationId: sensor-a", "registrationId: sensor-b")
    res = fleet.plan()
    assert "-/+ azure/hub/Enrollment/sensor  (registrationId cannot be updated in place)" in res.stdout
    assert "step: delete the enrollment sensor-a (If-Match etag)" in res.stdout
    assert fleet.apply().exit_code == 0
    assert [e["registrationId"] for e in client.list_enrollments()] == ["sensor-b"]
    assert fleet.plan().exit_code == 0


# ---------------------------------------------------------------------------------------------- bulk path
def test_many_device_creates_go_through_the_bulk_registry_api(azure_env, fleet, client, emulator):
    docs = "\n---\n".join(
        f"apiVersion: azure.fleetctl.io/v1\nkind: Device\nmetadata: {{name: bulk-{i:03d}, "
        f"target: hub}}\nspec:\n  tags: {{batch: '{i // 100}'}}"
        for i in range(150)
    )
    fleet.write("bulk.yaml", docs)
    emulator.reset()
    res = fleet.apply()
    assert res.exit_code == 0, res.output
    assert "150 applied, 0 failed" in res.stdout
    operations = emulator.stats()["operations"]
    assert operations["POST /devices"] == 2  # 100 + 50, identities and twins
    assert "PUT /devices/{device_id}" not in operations and "PATCH /twins/{device_id}" not in operations
    twins = {t["deviceId"]: t for t in client.query_devices()}
    assert len(twins) == 150 and twins["bulk-149"]["tags"] == {"batch": "1", "fleetctl": {"managed": True}}
    entries = [e for e in read_entries(Path(azure_env["FLEETCTL_JOURNAL"])) if e.get("address", "").startswith("azure")]
    assert sum(e["event"] == "begin" for e in entries) == 150 and sum(e["event"] == "success" for e in entries) == 150
    assert fleet.plan().exit_code == 0


def test_a_failed_device_in_a_bulk_call_fails_alone(azure_env, fleet, client, tmp_path):
    fleet.write(
        "bulk.yaml",
        "\n---\n".join(
            f"apiVersion: azure.fleetctl.io/v1\nkind: Device\nmetadata: {{name: d{i}, target: hub}}\nspec: {{}}"
            for i in range(3)
        ),
    )
    assert fleet.plan("--out", str(tmp_path / "p.json")).exit_code == 2
    client.create_device("d1", {"type": "sas"})  # a race after apply's stale check (check=False below)
    ctx = run.Context(journal_path=Path(azure_env["FLEETCTL_JOURNAL"]))
    specs = {n: m.spec for n, m in load_fleet(fleet.root).targets().items()}
    report = run.apply(load_plan(str(tmp_path / "p.json")), ctx, fleet.root, specs, check=False)
    assert sorted(report.applied) == ["azure/hub/Device/d0", "azure/hub/Device/d2"]
    assert [(a, m.split(":")[0]) for a, m in report.failed] == [("azure/hub/Device/d1", "DeviceAlreadyExists")]
    assert "fleetctl" not in (_twin(client, "d1").get("tags") or {})  # someone else's device: not taken over
    events = [
        (e["address"], e["event"])
        for e in read_entries(Path(azure_env["FLEETCTL_JOURNAL"]))
        if e.get("address", "").startswith("azure")
    ]
    assert sorted(events) == sorted(
        [(f"azure/hub/Device/d{i}", event) for i in range(3) for event in ("begin",)]
        + [("azure/hub/Device/d0", "success"), ("azure/hub/Device/d1", "failure"), ("azure/hub/Device/d2", "success")]
    )


# ------------------------------------------------------------------------------------------ validation
INVALID = """\
apiVersion: azure.fleetctl.io/v1
kind: Enrollment
metadata: {name: bad-end, target: hub}
spec:
  registrationId: device1.
  attestation: {symmetricKey: {}}
---
apiVersion: azure.fleetctl.io/v1
kind: Enrollment
metadata: {name: Sensor-7, target: hub}
spec:
  attestation: {symmetricKey: {}}
---
apiVersion: azure.fleetctl.io/v1
kind: Enrollment
metadata: {name: sensor-7-again, target: hub}
spec:
  registrationId: SENSOR-7
  attestation: {symmetricKey: {}}
---
apiVersion: azure.fleetctl.io/v1
kind: Enrollment
metadata: {name: nina, target: hub}
spec:
  attestation: {x509: {certificatePem: {file: certs/someone-else.pem}}}
  deviceId: "bad device"
---
apiVersion: azure.fleetctl.io/v1
kind: Device
metadata: {name: device1, target: hub}
spec:
  authentication: {type: x509CA, certificatePem: {file: certs/someone-else.pem}}
  tags: {fleetctl: {managed: false}, "a.b": 1}
---
apiVersion: azure.fleetctl.io/v1
kind: Enrollment
metadata: {name: too-long, target: hub}
spec:
  registrationId: {long}
  attestation: {symmetricKey: {}}
---
apiVersion: azure.fleetctl.io/v1
kind: Device
metadata: {name: literal-key, target: hub}
spec:
  authentication: {type: symmetricKey, primaryKey: c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==}
""".replace("{long}", "r" * 129)


def _line(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_validation_errors_name_file_and_line(azure_env, fleet, ca):
    fleet.cert("someone-else", issue("someone-else", ca))
    path = fleet.write("azure.yaml", INVALID)
    res = run_cli("validate", str(fleet.root))
    assert res.exit_code == 1
    errors = res.stderr

    def at(needle: str) -> str:  # files are named from the fleet folder on
        return f"fleet/azure.yaml:{_line(path, needle)}:"

    expected = [
        (at("registrationId: device1."), "'device1.' is not a valid DPS registration id"),
        (at("registrationId: SENSOR-7"), "registration id 'SENSOR-7' is already used by Enrollment 'Sensor-7'"),
        (
            at("attestation: {x509: {certificatePem: {file: certs/someone-else.pem}}}"),
            "the certificate's CN 'someone-else' is not the registration id 'nina'",
        ),
        (at('deviceId: "bad device"'), "'bad device' is not a valid IoT Hub device id"),
        (at("authentication: {type: x509CA"), "the certificate's CN 'someone-else' is not the device id 'device1'"),
        (at("tags: {fleetctl:"), "tag 'fleetctl' is fleetctl's ownership marker and cannot be declared"),
        (at("tags: {fleetctl:"), "twin key 'a.b' is not allowed"),
        (at("registrationId: rrrr"), f"'{'r' * 129}' is not a valid DPS registration id"),
        (at("primaryKey: c2Vj"), "a literal value where a secret reference belongs"),
    ]
    for where, message in expected:
        assert any(line.startswith(where) and message in line for line in errors.splitlines()), (where, message, errors)
    assert "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==" not in res.output


def test_target_sections_and_host_names_are_checked(azure_env, fleet, tmp_path):
    fleet.write(
        "targets.yaml",
        TARGET.replace("    arm:", "    armx:")
        .split("    armx:")[0]
        .replace("    dps:", "    dpsx:")
        .split("    dpsx:")[0],
    )
    fleet.write(
        "azure.yaml",
        """\
        apiVersion: azure.fleetctl.io/v1
        kind: EnrollmentGroup
        metadata: {name: group, target: hub}
        spec:
          attestation: {symmetricKey: {}}
        """,
    )
    res = run_cli("validate", str(fleet.root))
    assert res.exit_code == 1 and "target 'hub' has no azure.dps section, which an EnrollmentGroup needs" in res.stderr
    fleet.write("azure.yaml", "")
    fleet.edit("targets.yaml", f"hostName: {HUB_HOST}", "hostName: iot-fleet-prod.azure-devices.net")
    wrong = azure_env["FLEETCTL_HUB_CONNECTION_STRING"].replace(_host(azure_env), "iot-other.azure-devices.net")
    res = run_cli("plan", str(fleet.root), env={"FLEETCTL_HUB_CONNECTION_STRING": wrong})
    assert res.exit_code == 1
    assert (
        "target 'hub': azure.hub.connectionString is for iot-other.azure-devices.net, but the Target's "
        "hub.hostName is iot-fleet-prod.azure-devices.net"
    ) in res.stderr
    assert wrong.split("SharedAccessKey=")[1] not in res.output


def _host(env: dict[str, str]) -> str:
    return env["FLEETCTL_HUB_CONNECTION_STRING"].split(";")[0].split("=", 1)[1]


# -------------------------------------------------------------------------------------------- read progress
def test_the_twin_query_reports_devices_read(azure_env, fleet, tmp_path):
    """The hub's twin query reports each device read into the command's progress sink (engine/progress.py)."""
    from engine.progress import RecordingProgress

    fleet.write(
        "devices.yaml",
        "---\n".join(
            f"apiVersion: azure.fleetctl.io/v1\nkind: Device\nmetadata: {{name: dev{i}, target: hub}}\n"
            "spec:\n  authentication: {type: symmetricKey}\n"
            for i in range(5)
        ),
    )
    assert fleet.apply().exit_code == 0
    seen = RecordingProgress()
    result = run.plan(fleet.root, run.Context(journal_path=tmp_path / "journal.jsonl", progress=seen))
    assert not result.plan.changes
    twins = [t for t in seen.tasks if t.unit == "device twins"]
    assert [(t.label, t.total, t.done, t.closed) for t in twins] == [("read hub", 5, 5, True)]
