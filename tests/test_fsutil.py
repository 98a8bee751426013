"""engine/fsutil.py: exact modes whatever the umask, atomic replacement, append-only journals (issue 13 §6); and
every writer of a private file going through it."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest

from engine import fsutil
from engine.clock import clock_from_env
from engine.journal import Journal, read_entries
from tests.conftest import ROOT


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o000, 0o022, 0o077], ids=["umask-000", "umask-022", "umask-077"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_write_atomic_sets_the_exact_mode_whatever_the_umask(tmp_path, umask):
    private = fsutil.write_atomic(tmp_path / "a" / "plan.json", "{}\n")
    public = fsutil.write_atomic(tmp_path / "a" / "Thing.yaml", "kind: Thing\n", mode=fsutil.PUBLIC)
    assert mode(private) == 0o600 and private.read_text() == "{}\n"
    assert mode(public) == 0o644


def test_write_atomic_replaces_a_wider_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text("old")
    os.chmod(path, 0o666)
    fsutil.write_atomic(path, b"new")
    assert path.read_bytes() == b"new" and mode(path) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]


def test_a_failed_write_keeps_the_old_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "state.json"
    fsutil.write_atomic(path, "old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        fsutil.write_atomic(path, "new")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_journal_is_created_0600_appended_to_and_narrows_an_old_0644_file(tmp_path, umask):
    path = tmp_path / ".fleetctl" / "journal.jsonl"
    j = Journal(path, clock_from_env({"FLEETCTL_NOW": "2026-11-21T10:00:00Z"}), "p-1")
    j.write("begin", address="aws/x/Thing/a")
    j.close()
    assert mode(path) == 0o600
    os.chmod(path, 0o644)  # a journal an older fleetctl wrote
    j = Journal(path, clock_from_env({"FLEETCTL_NOW": "2026-11-21T10:00:01Z"}), "p-1")
    j.write("success", address="aws/x/Thing/a")
    j.close()
    assert mode(path) == 0o600
    assert [e["event"] for e in read_entries(path)] == ["begin", "success"]  # appended, never rewritten


def test_remove_is_quiet_about_a_missing_file(tmp_path):
    assert fsutil.remove(tmp_path / "none") is False
    fsutil.write_atomic(tmp_path / "p.json", "x")
    assert fsutil.remove(tmp_path / "p.json") is True and not (tmp_path / "p.json").exists()


def test_no_writer_in_the_engine_bypasses_fsutil():
    """Every file the engine writes goes through engine/fsutil.py, except the ones listed with their reason."""
    allowed = {  # file: (the writes it may make itself, why)
        "engine/fsutil.py": ({"open", "write_text", "write_bytes"}, "the module itself"),
        "engine/schema_gen.py": ({"write_text"}, "JSON schemas for the repository (a developer command)"),
        "engine/sandbox/certs.py": ({"write_text"}, "public sandbox certificates (keys stay in memory)"),
        "engine/sandbox/manager.py": ({"open"}, "the emulators' log files, handed to the child processes"),
    }
    offenders = []
    for path in sorted((ROOT / "engine").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        if rel.startswith("engine/sandbox/azure/"):  # the emulator's own state, os.open 0600
            continue
        may = allowed.get(rel, (set(), ""))[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            if name in ("write_text", "write_bytes") and name not in may:
                offenders.append(f"{rel}:{node.lineno} {name}")
            if name == "open" and "open" not in may:  # open(path, mode) or path.open(mode), or mode=...
                at = 0 if isinstance(node.func, ast.Attribute) else 1
                modes = node.args[at : at + 1] + [k.value for k in node.keywords if k.arg == "mode"]
                if any(
                    isinstance(m, ast.Constant) and isinstance(m.value, str) and set(m.value) & set("wax+")
                    for m in modes
                ):
                    offenders.append(f"{rel}:{node.lineno} open for writing")
    assert not offenders, offenders


def test_import_checkpoint_files_are_private(tmp_path, umask):
    from engine.importer.checkpoint import DATA_DIR, STATE_FILE, Checkpoint
    from engine.model import ActualResource, Address

    cp = Checkpoint.open(tmp_path / "out", {"target": "aws-eu"}, resume=False)
    cp.kind_done("aws.Thing", [ActualResource(Address.parse("aws/aws-eu/Thing/t1"), "aws.Thing", {"attributes": {}})])
    files = [tmp_path / "out" / STATE_FILE, *sorted((tmp_path / "out" / DATA_DIR).iterdir())]
    assert len(files) == 2 and all(mode(p) == 0o600 for p in files), [(p.name, oct(mode(p))) for p in files]
