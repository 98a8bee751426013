"""The layer contract (pyproject.toml [tool.importlinter], docs/architecture.md), checked by import-linter: no import
circle anywhere under engine/, the data flows one way from the CLI down, the sandbox is reached only by the CLI and
the planner never reaches a provider. And no module imports another module's private (`_x`) names."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import ROOT


def test_import_linter_contracts_are_kept():
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "4 kept, 0 broken" in proc.stdout, proc.stdout[-2000:]


def _module(path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_private_name_is_used_across_engine_modules():
    offenders = []
    for path in sorted((ROOT / "engine").rglob("*.py")):
        mod, tree = _module(path), ast.parse(path.read_text())
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
                if base.startswith("engine"):
                    for alias in node.names:
                        if alias.name.startswith("_") and not alias.name.startswith("__"):
                            offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: from {base} import {alias.name}")
                        aliases[alias.asname or alias.name] = f"{base}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("engine"):
                        aliases[alias.asname or alias.name] = alias.name
        for node in ast.walk(tree):  # module._x where module is another engine module
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                chain, base = [], node.value
                while isinstance(base, ast.Attribute):
                    chain.insert(0, base.attr)
                    base = base.value
                if isinstance(base, ast.Name) and base.id in aliases:
                    target = ".".join([aliases[base.id], *chain])
                    is_module = (ROOT / (target.replace(".", "/") + ".py")).exists() or (
                        ROOT / target.replace(".", "/") / "__init__.py"
                    ).exists()
                    if is_module and target != mod:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {target}.{node.attr}")
    assert offenders == []
