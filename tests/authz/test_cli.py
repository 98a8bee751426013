"""`fleetctl authz check` and `matrix` end to end (in-process CLI) on the example fleet and small synthetic fleets."""

from __future__ import annotations

import csv
import io
import json
import re

from tests.conftest import FLEET
from tests.scale.conftest import THINGSET, esp32_macs, write_fleet


def test_check_allows_own_topic_and_names_the_statement(cli):
    res = cli(
        "authz",
        "check",
        "DA1275B0",
        "--fleet",
        str(FLEET),
        "--action",
        "iot:Publish",
        "--topic",
        "springcard/springcore/DA1275B0/evt",
    )
    assert res.exit_code == 0, res.output
    line = (
        next(
            i
            for i, text in enumerate((FLEET / "aws" / "springpark.yaml").read_text().splitlines(), 1)
            if "Action: iot:Publish" in text
        )
        - 1
    )
    assert f"Allow policy 'reader-policy' statement 3 (fleet/aws/springpark.yaml:{line}:9)" in res.stdout
    assert "ARNs use account 123456789012" in res.stdout  # the Target declares no accountId


def test_check_denies_another_readers_topic_json(cli):
    res = cli(
        "authz",
        "check",
        "DA1275B0",
        "--fleet",
        str(FLEET),
        "--action",
        "iot:Publish",
        "--topic",
        "springcard/springcore/DA1275B1/evt",
        "--format",
        "json",
    )
    assert res.exit_code == 2
    out = json.loads(res.stdout)
    (answer,) = out["answers"]
    assert answer["decision"] == "implicit-deny" and answer["certificate"] == "springpark-da1275b0"
    assert answer["resource"] == "arn:aws:iot:eu-west-2:123456789012:topic/springcard/springcore/DA1275B1/evt"
    assert out["accountPlaceholder"] is True


def test_check_connect_with_another_client_id_and_resource(cli):
    res = cli("authz", "check", "DA1275B0", "--fleet", str(FLEET), "--action", "iot:Connect", "--client-id", "DA1275B1")
    assert res.exit_code == 2 and "client id DA1275B1" in res.stdout
    res = cli(
        "authz",
        "check",
        "DA1275B0",
        "--fleet",
        str(FLEET),
        "--action",
        "iot:Connect",
        "--resource",
        "arn:aws:iot:eu-west-2:123456789012:client/DA1275B0",
    )
    assert res.exit_code == 0


def test_check_errors(cli):
    res = cli("authz", "check", "nope", "--fleet", str(FLEET), "--action", "iot:Publish", "--topic", "x")
    assert res.exit_code == 1 and "no declared thing 'nope'" in res.stderr
    res = cli("authz", "check", "DA1275B0", "--fleet", str(FLEET), "--action", "iot:Publish")
    assert res.exit_code == 1 and "needs --topic or --resource" in res.stderr


def test_help_states_exit_codes_and_environment(cli):
    for sub in ("check", "matrix"):
        res = cli("authz", sub, "--help")
        assert "Exit codes" in res.stdout and "FLEETCTL_DEBUG" in res.stdout


def test_matrix_of_the_example_fleet_text_json_csv(cli):
    res = cli("authz", "matrix", "--fleet", str(FLEET))
    assert res.exit_code == 0, res.output
    assert "3 thing(s) in 1 row(s)" in res.stdout
    assert "springcard/springcore/${thing}/*" in res.stdout and "CONNECT AS" in res.stdout
    rows = json.loads(cli("authz", "matrix", "--fleet", str(FLEET), "--format", "json").stdout)["rows"]
    assert rows[0]["things"] == ["DA1275B0", "DA1275B1", "DA1275B2"]
    assert rows[0]["connect_as"] == {"allow": ["${thing}"], "deny": []}
    table = list(csv.DictReader(io.StringIO(cli("authz", "matrix", "--fleet", str(FLEET), "--format", "csv").stdout)))
    assert table[0]["count"] == "3" and table[0]["things"] == "DA1275B0 DA1275B1 DA1275B2"
    res = cli("authz", "matrix", "--fleet", str(FLEET), "--things", "DA1275B1")
    assert "1 thing(s) in 1 row(s)" in res.stdout


def test_matrix_folds_a_thingset(cli, tmp_path):
    root = write_fleet(tmp_path / "fleet", THINGSET, ["mac,site"] + [f"{m},paris" for m in esp32_macs(500)])
    res = cli("authz", "matrix", "--fleet", str(root))
    assert res.exit_code == 0, res.output
    assert "500 thing(s) in 1 row(s)" in res.stdout and "(+499 more)" in res.stdout


def test_allow_all_on_certificates_lets_a_reader_connect_as_another(cli, fleet_dir):
    """The u-blox demo policy on the example fleet's certificates: certificate policies apply whatever the
    client id, so DA1275B0 can take over DA1275B1's client id (and the last connection wins: SpringPark how-to)."""
    path = fleet_dir / "aws" / "springpark.yaml"
    text = path.read_text()
    start = text.index("    Statement:\n", text.index("name: reader-policy"))
    end = text.index("---", start)
    path.write_text(
        text[:start] + '    Statement:\n      - {Effect: Allow, Action: "iot:*", Resource: "*"}\n' + text[end:]
    )
    res = cli(
        "authz", "check", "DA1275B0", "--fleet", str(fleet_dir), "--action", "iot:Connect", "--client-id", "DA1275B1"
    )
    assert res.exit_code == 0
    res = cli("lint", str(fleet_dir), "--select", "FL011", env={"FLEETCTL_NOW": "2026-11-21T10:00:00Z"})
    assert res.exit_code == 2
    assert re.search(
        r"DA1275B0 \(and 2 other thing\(s\) with the same permissions\) can connect as client id "
        r"DA1275B1, which is DA1275B1's",
        res.stdout,
    ), res.stdout
