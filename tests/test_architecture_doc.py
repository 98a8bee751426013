"""docs/architecture.md's worked example stays true: the `aws.JobTemplate` module it shows, added through the public
seams only (a KindDecl by `aws(...)`, a Family by `families.register`), is planned, applied, re-planned with no
changes, replaced when its immutable document changes and reported as drift — against the sandbox (moto, real
boto3), in a process of its own so that the extra kind never reaches the other tests' registry."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import boto3

from tests.conftest import ROOT

DOC = ROOT / "docs" / "architecture.md"
TARGET = "apiVersion: fleetctl.io/v1\nkind: Target\nmetadata: {name: aws-eu}\nspec:\n  aws: {region: eu-west-2}\n"
TEMPLATE = """apiVersion: aws.fleetctl.io/v1
kind: JobTemplate
metadata: {{name: ota-esp32, target: aws-eu}}
spec:
  description: OTA update of the ESP32 modules
  document: {{operation: ota, firmware: "{version}"}}
"""


def example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1, "the worked example is the doc's one python block"
    return blocks[0]


def fleetctl(plugins: Path, *args: str) -> subprocess.CompletedProcess:
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import jobtemplate_kind; from engine.cli import main; "
        "main(sys.argv[2:])"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(plugins), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_the_worked_example_adds_a_kind_through_the_public_seams(aws_env, tmp_path):
    source = example()
    assert "_" + "ReadContext" not in source and not re.search(r"import _|\._[a-z]", source)  # public names only
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "jobtemplate_kind.py").write_text(source)
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    (fleet / "targets.yaml").write_text(TARGET)
    (fleet / "jobs.yaml").write_text(TEMPLATE.format(version="1.0.0"))

    first = fleetctl(plugins, "plan", str(fleet), "--detailed-exitcode")
    assert first.returncode == 2, first.stdout + first.stderr
    assert "+ aws/aws-eu/JobTemplate/ota-esp32" in first.stdout
    applied = fleetctl(plugins, "apply", str(fleet), "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    iot = boto3.client("iot", region_name="eu-west-2")
    described = iot.describe_job_template(jobTemplateId="ota-esp32")
    assert json.loads(described["document"]) == {"firmware": "1.0.0", "operation": "ota"}
    again = fleetctl(plugins, "plan", str(fleet), "--detailed-exitcode")
    assert again.returncode == 0 and "No changes" in again.stdout, again.stdout + again.stderr

    (fleet / "jobs.yaml").write_text(TEMPLATE.format(version="1.1.0"))  # immutable on AWS: a replace
    replaced = fleetctl(plugins, "plan", str(fleet), "--detailed-exitcode")
    assert replaced.returncode == 2 and "aws/aws-eu/JobTemplate/ota-esp32" in replaced.stdout
    assert "replace" in replaced.stdout.lower(), replaced.stdout
    assert fleetctl(plugins, "apply", str(fleet), "--auto-approve").returncode == 0
    assert json.loads(iot.describe_job_template(jobTemplateId="ota-esp32")["document"])["firmware"] == "1.1.0"

    iot.delete_job_template(jobTemplateId="ota-esp32")  # out of band
    drift = fleetctl(plugins, "drift", str(fleet))
    assert drift.returncode == 2 and "aws/aws-eu/JobTemplate/ota-esp32" in drift.stdout, drift.stdout + drift.stderr


def test_without_the_module_the_kind_is_unknown_and_located(aws_env, tmp_path):
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    (fleet / "targets.yaml").write_text(TARGET)
    (fleet / "jobs.yaml").write_text(TEMPLATE.format(version="1.0.0"))
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "validate", str(fleet)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "jobs.yaml:2" in proc.stderr, proc.stderr
