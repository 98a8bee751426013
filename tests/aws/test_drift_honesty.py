"""Drift never says "in sync" when it is not (issue 12 §8), end to end on the moto sandbox: a certificate revoked
out of band is drift no plan can repair — listed with the reason and what a person must do in drift text,
markdown and JSON, exit 2; plan lists it and exits 1; a check that could not read exits 1 and never says
"In sync"."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from engine.pki import cert_info
from tests.conftest import ROOT, run_cli

CERT_B1 = cert_info((ROOT / "fleet/aws/certs/da1275b1.pem").read_text()).cert_id
ADDRESS = "aws/aws-eu/Certificate/springpark-da1275b1"


def iot():
    return boto3.client("iot", region_name="eu-west-2", config=Config(retries={"total_max_attempts": 1}))


@pytest.fixture
def revoked(aws_env, fleet_dir) -> Path:
    """The example fleet applied, then one device certificate revoked out of band (as an operator would on a
    compromised device)."""
    assert run_cli("apply", str(fleet_dir), "--auto-approve").exit_code == 0
    iot().update_certificate(certificateId=CERT_B1, newStatus="REVOKED")
    return fleet_dir


def test_revoked_certificate_is_drift_with_reason_and_remedy(revoked):
    res = run_cli("drift", str(revoked))
    assert res.exit_code == 2, res.output
    assert "In sync" not in res.output
    assert "Drift: 1 resource(s) differ from the manifests; 1 cannot be repaired automatically." in res.stdout
    assert f"  ! {ADDRESS}" in res.stdout
    assert 'status: "REVOKED" → "ACTIVE"' in res.stdout
    assert "why: the certificate is REVOKED and the manifest says ACTIVE" in res.stdout
    assert "to do: issue a new certificate (a new PEM) for the device, declare it" in res.stdout
    assert "detach the revoked one" in res.stdout
    assert "error" not in res.stderr  # it is drift, reported as such, not an error beside an "in sync"


def test_revoked_certificate_in_drift_json_and_markdown(revoked):
    as_json = run_cli("drift", str(revoked), "--format", "json")
    assert as_json.exit_code == 2
    data = json.loads(as_json.stdout)
    assert data["inSync"] is False and data["complete"] is True
    assert data["summary"]["resources"] == 1 and data["summary"]["blocked"] == 1
    (blocked,) = data["blocked"]
    assert blocked["address"] == ADDRESS and blocked["field"] == "status" and blocked["action"] == "update"
    assert blocked["fields"] == [{"op": "change", "path": "status", "before": "REVOKED", "after": "ACTIVE"}]
    assert "cannot be made ACTIVE or INACTIVE again" in blocked["reason"]
    assert "detach the revoked one" in blocked["remedy"]
    assert re.fullmatch(r".*fleet/aws/springpark\.yaml:\d+:\d+", blocked["source"]), blocked["source"]
    md = run_cli("drift", str(revoked), "--format", "markdown")
    assert md.exit_code == 2
    assert "### fleetctl drift: 1 resource(s) out of sync" in md.stdout
    assert f"`{ADDRESS}` (`status`)" in md.stdout and "**To do:** issue a new certificate" in md.stdout
    assert "in sync" not in md.stdout.lower().replace("out of sync", "")


def test_plan_lists_the_revoked_certificate_and_exits_1(revoked, tmp_path):
    res = run_cli("plan", str(revoked), "--out", str(tmp_path / "p.json"))
    assert res.exit_code == 1, res.output
    assert "Cannot be planned: 1 difference(s) a person must resolve" in res.stdout
    assert "No changes can be planned. 1 difference(s) cannot be planned" in res.stdout
    assert "The actual state matches the manifests" not in res.stdout
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["status"] == "errored" and data["changes"] == []
    md = run_cli("show", str(tmp_path / "p.json"), "--format", "markdown")
    assert "[!CAUTION]" in md.stdout and "apply refuses it" in md.stdout
    one = run_cli("show", str(tmp_path / "p.json"), "--address", "aws/*/Certificate/*")
    assert one.exit_code == 0 and f"! {ADDRESS}" in one.stdout and "to do: issue a new certificate" in one.stdout
    as_json = json.loads(run_cli("show", str(tmp_path / "p.json"), "--address", ADDRESS, "--format", "json").stdout)
    assert [b["address"] for b in as_json] == [ADDRESS]


def test_accepting_the_revocation_in_the_manifest_is_in_sync_again(revoked):
    path = revoked / "aws/springpark.yaml"
    text = path.read_text()
    anchor = "certificatePem: {file: certs/da1275b1.pem}\n  caCertificate: springcore-sandbox-ca\n  status: ACTIVE"
    assert anchor in text
    path.write_text(text.replace(anchor, anchor.replace("ACTIVE", "REVOKED")))
    res = run_cli("drift", str(revoked))
    assert res.exit_code == 0, res.output
    assert "In sync" in res.stdout


@pytest.fixture
def denying_endpoint():
    """An AWS endpoint on loopback that refuses every request (403 AccessDeniedException, not retried)."""

    class Deny(BaseHTTPRequestHandler):
        def _deny(self) -> None:
            body = json.dumps({"message": "User is not authorized to perform: iot:ListThings"}).encode()
            self.send_response(403)
            self.send_header("x-amzn-ErrorType", "AccessDeniedException")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _deny

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Deny)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_drift_check_that_cannot_read_exits_1_and_never_says_in_sync(
    aws_env, fleet_dir, monkeypatch, denying_endpoint
):
    monkeypatch.setenv("AWS_ENDPOINT_URL", denying_endpoint)
    for fmt in ("text", "json", "markdown"):
        res = run_cli("drift", str(fleet_dir), "--format", fmt)
        assert res.exit_code == 1, res.output
        assert "in sync" not in res.output.lower() and '"inSync": true' not in res.output
        assert "reading aws target 'aws-eu' failed" in res.stderr
