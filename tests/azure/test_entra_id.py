"""Microsoft Entra ID end to end: a Target with `azure.auth: entraId` reaches ARM, the hub and DPS with tokens the
real azure-identity chain gets from the sandbox's own Entra tenant (the emulator's token endpoint, through
AZURE_AUTHORITY_HOST), the emulators refuse tokens Azure would refuse, every successful mutating call is journaled
with its request id, and a hub CA is proven in the two steps Azure requires.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from engine.journal import read_entries
from engine.providers.azure.client import ArmTarget, AzureClient
from engine.providers.azure.planning import sign_command
from engine.sandbox.azure import AzureEmulator
from engine.sandbox.azure.entra import ARM_AUDIENCES, DPS_AUDIENCE, HUB_AUDIENCE
from engine.sandbox.certs import Issued, make_ca, verification_certificate
from tests.azure.test_provider_e2e import KEYS, TARGET, Fleet, declare_every_kind
from tests.conftest import run_cli

ENTRA_TARGET = (
    TARGET.replace("  azure:\n", "  azure:\n    auth: entraId\n")
    .replace(", connectionString: {env: FLEETCTL_HUB_CONNECTION_STRING}", "")
    .replace(",\n          connectionString: {env: FLEETCTL_DPS_CONNECTION_STRING}", "")
)


@pytest.fixture
def entra_env(emulator: AzureEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """What `fleetctl sandbox up` exports for Entra ID, and no connection string at all."""
    env = {
        **emulator.entra_env(),
        "FLEETCTL_HUB_HOST": emulator.host,
        "FLEETCTL_DPS_HOST": emulator.host,
        "REQUESTS_CA_BUNDLE": emulator.ca_bundle,
        "FLEETCTL_ARM_ENDPOINT": emulator.arm_base_url,
        "FLEETCTL_JOURNAL": str(tmp_path / "journal.jsonl"),
        "FLEETCTL_NOW": "2026-11-21T10:00:00Z",
        "FLEETCTL_GIT_COMMIT": "0123456789abcdef0123456789abcdef01234567",
        "FLEETCTL_ACTOR": "ci-test",
        **KEYS,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("FLEETCTL_ARM_TOKEN", "FLEETCTL_HUB_CONNECTION_STRING", "FLEETCTL_DPS_CONNECTION_STRING"):
        monkeypatch.delenv(key, raising=False)
    return env


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    made = Fleet(tmp_path / "fleet")
    (made.root / "targets.yaml").write_text(ENTRA_TARGET)
    return made


@pytest.fixture
def reader(emulator: AzureEmulator) -> AzureClient:
    """Reads back what the services hold, with connection strings (not through the provider under test)."""
    arm = ArmTarget(
        emulator.arm_base_url,
        emulator.subscription_id,
        emulator.resource_group,
        emulator.hub_name,
        emulator.credential(),
    )
    return AzureClient(emulator.hub_connection_string, emulator.dps_connection_string, arm, emulator.ca_bundle)


def test_entra_target_plan_apply_plan_with_the_two_step_proof_of_possession(entra_env, fleet, reader, emulator):
    """Random verification codes (as Azure): a verification certificate committed for an earlier code is reported
    plainly with the hub's new code and the command to sign it; signed and committed, the next apply verifies; the
    plan after it shows no changes. Every call went through Entra ID tokens (no connection string is set)."""
    ca = make_ca({"CN": "fleetctl entra root CA", "O": "fleetctl"})
    declare_every_kind(fleet, ca, "0" * 48)  # made for a code the hub never issues
    assert ENTRA_TARGET.count("connectionString") == 0 and "auth: entraId" in ENTRA_TARGET
    planned = fleet.plan()
    assert planned.exit_code == 2, planned.output
    assert "+ azure/hub/HubCertificate/rootca" in planned.stdout

    first = fleet.apply()
    assert first.exit_code == 1, first.output
    assert "Traceback" not in first.output and "internal error" not in first.output
    found = re.search(
        r"ProofOfPossessionPending: the certificate is uploaded but not verified: the hub's "
        r"verification code is ([0-9A-F]{48})\.",
        first.stderr,
    )
    assert found, first.stderr
    code = found.group(1)
    assert sign_command(code) in " ".join(first.stderr.split())
    assert f"CN={'0' * 48}, a code the hub issued earlier" in " ".join(first.stderr.split())
    assert reader.get_hub_certificate("rootca")["properties"]["isVerified"] is False

    pending = fleet.plan()
    assert pending.exit_code == 2 and "isVerified: false → true" in pending.stdout
    said = " ".join(pending.stdout.split())
    assert (
        f"pending proof of possession: the hub's current verification code is {code}; the declared "
        f"verificationCertificatePem has CN {'0' * 48}, not that code" in said
    ), said
    assert sign_command(code) in said
    assert any(
        e["event"] == "proof-pending" and e["verificationCode"] == code
        for e in read_entries(Path(entra_env["FLEETCTL_JOURNAL"]))
    )

    fleet.cert("rootca-verification", verification_certificate(ca, code))  # signed outside fleetctl
    second = fleet.apply()
    assert second.exit_code == 0, second.output
    assert reader.get_hub_certificate("rootca")["properties"]["isVerified"] is True
    assert reader.get_device("device1")["authentication"]["type"] == "certificateAuthority"
    assert {g["enrollmentGroupId"] for g in reader.list_enrollment_groups()} >= {"dps-group", "key-group"}
    final = fleet.plan()
    assert final.exit_code == 0, final.output

    journal = read_entries(Path(entra_env["FLEETCTL_JOURNAL"]))
    calls = [e for e in journal if e.get("op") and e["event"] == "success"]
    assert calls and all(re.fullmatch(r"[0-9a-f-]{36}", e.get("requestId") or "") for e in calls), calls
    arm = [e for e in calls if e["op"].startswith("certificates.")]
    assert {e["op"] for e in arm} >= {
        "certificates.create_or_update",
        "certificates.generate_verification_code",
        "certificates.verify",
    }
    assert all(re.fullmatch(r"[0-9a-f-]{36}", e.get("correlationRequestId") or "") for e in arm)
    assert {e["op"] for e in calls} >= {
        "bulk_create_or_update_devices",
        "enrollment_group.create_or_update",
        "enrollment.create_or_update",
    }
    successes = [e for e in journal if e["event"] == "success" and "op" not in e]
    assert all(e.get("requestIds") for e in successes), successes
    assert entra_env["AZURE_CLIENT_SECRET"] not in Path(entra_env["FLEETCTL_JOURNAL"]).read_text()
    assert entra_env["AZURE_CLIENT_SECRET"] not in first.output + second.output + final.output


def test_request_ids_on_connection_string_targets_too(emulator, reader):
    """The request ids come from the SDKs' response hooks for every API, whatever the authentication."""
    reader.capture()
    reader.create_device("rid-1", {"type": "sas"})
    reader.update_twin("rid-1", {"tags": {"a": 1}}, None)
    hub = reader.captured()
    reader.capture()
    reader.put_enrollment("rid-e", {"attestation": {"type": "symmetricKey"}})
    reader.delete_enrollment("rid-e", None)
    dps = reader.captured()
    reader.capture()
    reader.list_hub_certificates()
    arm = reader.captured()
    assert len(hub) == 2 and len(dps) == 2 and len(arm) == 1
    assert len({entry["requestId"] for entry in hub + dps + arm}) == 5
    assert set(arm[0]) == {"requestId", "correlationId"}


def test_no_credential_is_a_plain_error_naming_the_chain(entra_env, fleet, monkeypatch):
    for key in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_AUTHORITY_HOST"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "AzureCliCredential")  # no IMDS probe, no az on this machine
    monkeypatch.setenv("PATH", "/nonexistent")
    fleet.write(
        "azure.yaml",
        """\
        apiVersion: azure.fleetctl.io/v1
        kind: Device
        metadata: {name: lone, target: hub}
        spec: {authentication: {type: symmetricKey}}
        """,
    )
    result = fleet.plan()
    assert result.exit_code == 1, result.output
    text = " ".join(result.stderr.split())
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert (
        "target 'hub' (azure.auth: entraId): CredentialUnavailable: no Microsoft Entra ID credential produced a "
        "token for https://iothubs.azure.net/.default (tried: AzureCliCredential:" in text
    ), text
    assert "AZURE_CLIENT_SECRET" in text and "AZURE_FEDERATED_TOKEN_FILE" in text and "az login" in text
    assert "azure.auth: connectionString" in text


def test_a_refused_client_secret_names_the_credential(entra_env, fleet, monkeypatch):
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "not-the-secret")
    fleet.write(
        "azure.yaml",
        """\
        apiVersion: azure.fleetctl.io/v1
        kind: Device
        metadata: {name: lone, target: hub}
        spec: {authentication: {type: symmetricKey}}
        """,
    )
    result = fleet.plan()
    assert result.exit_code == 1
    text = " ".join(result.stderr.split())
    assert "ClientSecretCredential from AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET" in text, text
    assert "AADSTS7000215: Invalid client secret provided." in text
    assert "not-the-secret" not in result.output


def test_connection_string_auth_needs_the_connection_strings(entra_env, fleet):
    (fleet.root / "targets.yaml").write_text(ENTRA_TARGET.replace("auth: entraId", "auth: connectionString"))
    result = run_cli("validate", str(fleet.root))
    assert result.exit_code == 1
    assert "auth: connectionString needs hub.connectionString and dps.connectionString" in result.stderr


# ------------------------------------------------------------------------ the emulators' bearer checks
def _urls(emulator: AzureEmulator) -> dict[str, tuple[str, str, tuple[str, ...]]]:
    """(method, url, audiences) of one read per API."""
    arm = (
        f"{emulator.arm_base_url}/subscriptions/{emulator.subscription_id}/resourceGroups/"
        f"{emulator.resource_group}/providers/Microsoft.Devices/IotHubs/{emulator.hub_name}/certificates"
        "?api-version=2023-06-30"
    )
    return {
        "hub": ("GET", f"https://{emulator.host}/devices/nobody?api-version=2021-04-12", (HUB_AUDIENCE,)),
        "dps": ("GET", f"https://{emulator.host}/enrollments/nobody?api-version=2021-10-01", (DPS_AUDIENCE,)),
        "arm": ("GET", arm, ARM_AUDIENCES),
    }


def _call(emulator: AzureEmulator, api: str, token: str) -> requests.Response:
    method, url, _ = _urls(emulator)[api]
    return requests.request(
        method, url, headers={"Authorization": f"Bearer {token}"}, verify=emulator.ca_bundle, timeout=10
    )


def _message(api: str, response: requests.Response) -> str:
    body = response.json()
    return body["error"]["message"] if api == "arm" else body.get("Message") or body.get("message")


@pytest.mark.parametrize("api", ["hub", "dps", "arm"])
def test_each_emulator_accepts_its_own_audience_only(emulator, api):
    own = _urls(emulator)[api][2][0]
    assert _call(emulator, api, emulator.entra.mint(own + "/.default")).status_code in (200, 404)
    others = {HUB_AUDIENCE, DPS_AUDIENCE, ARM_AUDIENCES[0]} - {own}
    for audience in sorted(others):
        refused = _call(emulator, api, emulator.entra.mint(audience + "/.default"))
        assert refused.status_code == 401, (api, audience)
        assert "wrong audience" in _message(api, refused)


@pytest.mark.parametrize("api", ["hub", "dps", "arm"])
def test_each_emulator_refuses_expired_foreign_and_misissued_tokens(emulator, api):
    audience = _urls(emulator)[api][2][0]
    expired = _call(emulator, api, emulator.entra.mint(audience, now=time.time() - 7200))
    foreign = _call(emulator, api, emulator.entra.mint(audience, key=rsa.generate_private_key(65537, 2048)))
    misissued = _call(emulator, api, emulator.entra.mint(audience, issuer="https://login.microsoftonline.com/x/v2.0"))
    garbage = _call(emulator, api, "not-a-jwt")
    assert [r.status_code for r in (expired, foreign, misissued, garbage)] == [401] * 4
    assert "expired" in _message(api, expired)
    assert "signature" in _message(api, foreign)
    assert "another issuer" in _message(api, misissued)
    if api == "hub":  # each API in its own error shape
        assert expired.json()["Message"].startswith("ErrorCode:IotHubUnauthorizedAccess;")
    elif api == "arm":
        assert expired.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert all(r.headers.get("x-ms-request-id") for r in (expired, foreign, misissued, garbage))


def test_the_token_endpoint_speaks_entra(emulator):
    token_url = f"{emulator.authority_host}/{emulator.entra.tenant_id}/oauth2/v2.0/token"
    form = {
        "grant_type": "client_credentials",
        "client_id": emulator.entra.client_id,
        "client_secret": emulator.entra.client_secret,
        "scope": "https://iothubs.azure.net/.default",
    }
    issued = requests.post(token_url, data=form, verify=emulator.ca_bundle, timeout=10)
    assert issued.status_code == 200 and issued.json()["token_type"] == "Bearer"
    assert _call(emulator, "hub", issued.json()["access_token"]).status_code == 404  # authenticated: no such device
    wrong = requests.post(token_url, data={**form, "client_secret": "x"}, verify=emulator.ca_bundle, timeout=10)
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    discovery = requests.get(
        f"{emulator.authority_host}/{emulator.entra.tenant_id}/v2.0/.well-known/openid-configuration",
        verify=emulator.ca_bundle,
        timeout=10,
    ).json()
    assert discovery["token_endpoint"] == token_url and discovery["issuer"] == emulator.entra.issuer


# ------------------------------------------------------------------------------- verification codes
def test_verification_codes_are_random_per_request_unless_the_demo_setting_is_on(emulator, reader, root_ca: Issued):
    uploaded = reader.put_hub_certificate("rootca", root_ca.pem)
    codes, etag = [], uploaded["etag"]
    for _ in range(3):
        nonce = reader.generate_verification_code("rootca", etag)
        codes.append(nonce["properties"]["verificationCode"])
        etag = nonce["etag"]
    assert len(set(codes)) == 3 and all(re.fullmatch(r"[0-9A-F]{48}", code) for code in codes)
    with pytest.raises(Exception, match="not the current verification code"):
        reader.verify_hub_certificate("rootca", etag, verification_certificate(root_ca, codes[0]).pem)
    emulator.configure(fixed_verification_codes=True)
    try:
        fixed = [
            reader.generate_verification_code("rootca", reader.get_hub_certificate("rootca")["etag"])["properties"][
                "verificationCode"
            ]
            for _ in range(2)
        ]
    finally:
        emulator.configure(fixed_verification_codes=False)
    assert fixed[0] == fixed[1]


def test_the_sandbox_says_it_runs_the_demo_code(tmp_path):
    from engine.sandbox import manager

    assert manager.demo_args("azure") == ["--fixed-verification-codes"]
    assert "--fixed-verification-codes" not in manager.quota_args("azure")  # added by up() in both modes
    assert "fixed CA verification code" in manager.DEMO_NOTE and "throwaway demo CA" in manager.DEMO_NOTE
    described = {
        "hub_connection_string": "HostName=127.0.0.1:1;SharedAccessKeyName=a;SharedAccessKey=b",
        "ca_bundle": "/x",
        "arm_base_url": "https://127.0.0.1:1",
        "host": "127.0.0.1:1",
        "dps_connection_string": "HostName=127.0.0.1:1;SharedAccessKeyName=c;SharedAccessKey=d",
        "authority_host": "https://127.0.0.1:1",
        "tenant_id": "t",
        "client_id": "c",
        "client_secret": "s",
    }
    exported = manager.exports(None, described)
    assert {
        k: exported[k]
        for k in (
            "AZURE_AUTHORITY_HOST",
            "AZURE_TENANT_ID",
            "AZURE_CLIENT_ID",
            "AZURE_CLIENT_SECRET",
            "FLEETCTL_HUB_HOST",
            "FLEETCTL_DPS_HOST",
        )
    } == {
        "AZURE_AUTHORITY_HOST": "https://127.0.0.1:1",
        "AZURE_TENANT_ID": "t",
        "AZURE_CLIENT_ID": "c",
        "AZURE_CLIENT_SECRET": "s",
        "FLEETCTL_HUB_HOST": "127.0.0.1:1",
        "FLEETCTL_DPS_HOST": "127.0.0.1:1",
    }


def test_docs_azure_target_and_certificate_role_hold():
    """docs/azure.md: its Target validates as entraId, its role covers every ARM certificate call fleetctl makes."""
    import json

    import yaml

    from engine.manifest.core_kinds import TargetSpec

    text = (Path(__file__).resolve().parents[2] / "docs" / "azure.md").read_text()
    target = yaml.safe_load(re.search(r"```yaml\n(.*?)\n```", text, re.S).group(1))
    assert TargetSpec.model_validate(target["spec"]).azure.auth_mode == "entraId"
    role = json.loads(re.search(r"<!-- snippet: azure-certificate-role -->\n```json\n(.*?)\n```", text, re.S).group(1))
    actions = {a.lower() for a in role["Actions"]}
    for call in ("read", "write", "delete", "generateVerificationCode/action", "verify/action"):
        assert f"microsoft.devices/iothubs/certificates/{call}".lower() in actions
    without = dict(target["spec"]["azure"])
    without.pop("auth")
    assert TargetSpec.model_validate({"azure": without}).azure.auth_mode == "entraId"  # no key declared
    with_key = {**without, "hub": {**without["hub"], "connectionString": {"env": "X"}}}
    with pytest.raises(ValueError, match="auth: connectionString needs dps.connectionString"):
        TargetSpec.model_validate({"azure": with_key})  # the default follows the hub; DPS has no key
    with_keys = {**with_key, "dps": {**without["dps"], "connectionString": {"env": "Y"}}}
    assert TargetSpec.model_validate({"azure": with_keys}).azure.auth_mode == "connectionString"


def test_arm_without_a_credential_is_a_plain_error_on_a_connection_string_target(emulator, tmp_path, monkeypatch):
    """ARM has no shared keys: a HubCertificate on a connectionString Target needs the Entra chain (or the explicit
    FLEETCTL_ARM_TOKEN fallback); without either the plan stops with the chain tried and the fix."""
    made = Fleet(tmp_path / "fleet")
    for key, value in {
        "FLEETCTL_HUB_CONNECTION_STRING": emulator.hub_connection_string,
        "FLEETCTL_DPS_CONNECTION_STRING": emulator.dps_connection_string,
        "REQUESTS_CA_BUNDLE": emulator.ca_bundle,
        "FLEETCTL_ARM_ENDPOINT": emulator.arm_base_url,
        "FLEETCTL_JOURNAL": str(tmp_path / "journal.jsonl"),
        "AZURE_TOKEN_CREDENTIALS": "AzureCliCredential",
        "PATH": "/nonexistent",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("FLEETCTL_ARM_TOKEN", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(key, raising=False)
    ca = make_ca("arm-less CA")
    made.cert("rootca", ca)
    made.write(
        "azure.yaml",
        """\
        apiVersion: azure.fleetctl.io/v1
        kind: HubCertificate
        metadata: {name: rootca, target: hub}
        spec: {certificatePem: {file: certs/rootca.pem}}
        """,
    )
    result = made.plan()
    assert result.exit_code == 1, result.output
    text = " ".join(result.stderr.split())
    assert "Traceback" not in result.output and "internal error" not in result.output
    assert "CredentialUnavailable: no Microsoft Entra ID credential produced a token" in text, text
    assert "AzureCliCredential: Azure CLI not found on path" in text and "AZURE_FEDERATED_TOKEN_FILE" in text
    monkeypatch.setenv("FLEETCTL_ARM_TOKEN", emulator.entra.mint("https://management.azure.com/.default"))
    assert made.plan().exit_code == 2  # the explicit static-token fallback


def test_default_azure_credential_reads_the_sandbox_tenant_from_the_process_environment(emulator, monkeypatch):
    """Without a secret in the Target's settings the chain is DefaultAzureCredential itself; its
    EnvironmentCredential gets the token from the sandbox's endpoint (instance discovery off for loopback)."""
    from azure.identity import DefaultAzureCredential

    from engine.providers.azure.client import HUB_SCOPE, entra_credential

    for key, value in {**emulator.entra_env(), "REQUESTS_CA_BUNDLE": emulator.ca_bundle}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "EnvironmentCredential")
    credential = entra_credential(
        {"AZURE_AUTHORITY_HOST": emulator.authority_host, "REQUESTS_CA_BUNDLE": emulator.ca_bundle}
    )
    assert isinstance(credential, DefaultAzureCredential)
    token = credential.get_token(HUB_SCOPE).token
    assert emulator.entra.check(f"Bearer {token}", (HUB_AUDIENCE,), code="x")["appid"] == emulator.entra.client_id
