"""Layering rules (what import-linter would enforce): SDK imports live in one client module per provider,
the planner never prints, and validating a manifest imports no cloud SDK."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import ROOT

SDKS = {
    "boto3": "engine/providers/aws/client.py",
    "botocore": "engine/providers/aws/client.py",
    "azure": "engine/providers/azure/client/",  # a package: credentials, errors, api
    "msrest": "engine/providers/azure/client/",
    "uamqp": "engine/providers/azure/client/",
}
SANDBOX_OK = ("engine/sandbox/",)


def imports(path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {n.name.split(".")[0] for n in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def test_sdk_imports_are_confined_to_client_modules():
    offenders = []
    for path in sorted((ROOT / "engine").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        if rel.startswith(SANDBOX_OK):
            continue
        for mod in imports(path) & set(SDKS):
            if not (rel == SDKS[mod] or (SDKS[mod].endswith("/") and rel.startswith(SDKS[mod]))):
                offenders.append(f"{rel} imports {mod}")
    assert not offenders, offenders


def test_planner_diff_and_renderers_never_print():
    for rel in (
        "engine/plan/planner.py",
        "engine/diff.py",
        "engine/graph.py",
        "engine/plan/render.py",
        "engine/plan/model.py",
        "engine/run/context.py",
        "engine/run/planning.py",
        "engine/run/applying.py",
        "engine/plan/driftview.py",
    ):
        tree = ast.parse((ROOT / rel).read_text())
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "print"]
        assert not calls, f"{rel} prints"


def test_validate_imports_no_cloud_sdk():
    code = (
        "import sys; from engine.manifest.fleet import load_fleet; f = load_fleet('fleet', env={});"
        "bad = [m for m in ('boto3', 'botocore', 'azure.iot.hub', 'azure.mgmt.iothub', 'azure.storage.blob', 'msrest')"
        " if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"validation imported: {out.stdout}"
