"""Issue 15.5: `fleetctl sandbox up` without moto says exactly what to install (not "exited with code 1")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_sandbox_up_without_moto_says_what_to_install(tmp_path: Path) -> None:
    shim = tmp_path / "shim"
    shim.mkdir()
    # a `moto` that cannot be imported, first on the path: what a `pip install .` without the extra looks like
    (shim / "moto.py").write_text("raise ModuleNotFoundError(\"No module named 'moto'\", name='moto')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FLEETCTL_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(shim), str(ROOT)])
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "sandbox", "up"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "exited with code" not in proc.stderr and "internal error" not in proc.stderr
    assert "the aws emulator needs moto, which is not installed" in proc.stderr
    assert "python -m pip install 'fleetctl[sandbox]'" in proc.stderr
    assert "-e '.[sandbox]'" in proc.stderr and "source .venv/bin/activate" in proc.stderr
    assert not (tmp_path / ".fleetctl" / "sandbox.env").exists()  # nothing half-started
