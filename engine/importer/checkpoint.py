"""Resumable imports: what an interrupted `fleetctl import` already read, kept in DIR/.import-state.json.

Reading 100k things takes hours at the default quotas (ListThingPrincipals and DescribeCertificate are 10/s
each, research/quotas.md §8.1); an interruption must not cost them again. The state file records the request
(a resume must ask the same), the kinds finished and, inside the thing walk, the ListThings token of the next
page. Their actual state sits next to it as JSON lines (DIR/.import-state/<kind>.jsonl), appended per page;
the state file is replaced atomically after each append and says how many lines are valid, so a crash between
the two leaves extra lines that the resume drops. Certificate PEMs fetched so far are kept the same way.

Only what the providers read is kept: actual state (no secrets: readers never return them) and public PEMs.
The folder is removed once the manifests are written.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from engine import fsutil
from engine.diagnostics import FleetctlError, error
from engine.model import ActualResource, Address

STATE_FILE = ".import-state.json"
DATA_DIR = ".import-state"
FORMAT_VERSION = 1


def check_out(out: Path, resume: bool) -> None:
    """An import writes into an empty folder (or continues its own interrupted run): it never overwrites."""
    if out.exists() and not out.is_dir():
        raise FleetctlError(error(f"--out {out} is a file, not a folder"))
    if not out.exists():
        return
    entries = sorted(p.name for p in out.iterdir() if p.name not in (STATE_FILE, DATA_DIR))
    if entries and not (resume and (out / STATE_FILE).exists()):
        raise FleetctlError(
            error(
                f"--out {out} is not empty ({', '.join(entries)})",
                "an import writes into a new or empty folder so that it never overwrites "
                "manifests; choose another folder",
            )
        )


def resource_to_json(r: ActualResource) -> dict[str, Any]:
    return {
        "address": str(r.address),
        "kind": r.kind,
        "state": r.state,
        "token": r.token,
        "managed": r.managed,
        "ids": r.ids,
    }


def resource_from_json(data: Mapping[str, Any]) -> ActualResource:
    return ActualResource(
        Address.parse(data["address"]),
        data["kind"],
        data["state"],
        data.get("token", ""),
        bool(data.get("managed")),
        data.get("ids", {}),
    )


class Checkpoint:
    """One import's progress. Thread-safe: materials may be fetched while pages are recorded."""

    def __init__(self, out: Path, request: Mapping[str, Any], data: dict[str, Any] | None = None) -> None:
        self.out = out
        self.path = out / STATE_FILE
        self.dir = out / DATA_DIR
        self.data: dict[str, Any] = data or {
            "formatVersion": FORMAT_VERSION,
            "request": dict(request),
            "kinds": {},
            "pages": {},
            "materials": 0,
            "written": [],
        }
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ open
    @classmethod
    def open(cls, out: Path, request: Mapping[str, Any], *, resume: bool) -> Checkpoint:
        """Start a new checkpoint, or (resume) continue the one in `out`. Refuses to mix two different imports."""
        path = out / STATE_FILE
        if not path.exists():
            cp = cls(out, request)
            cp._save()
            return cp
        if not resume:
            raise FleetctlError(
                error(
                    f"{out} holds an interrupted import ({STATE_FILE})",
                    "run the same command with --resume to continue it, or choose another folder",
                )
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise FleetctlError(error(f"cannot read {path}: {exc}", "remove the folder and import again")) from None
        if data.get("formatVersion") != FORMAT_VERSION:
            raise FleetctlError(
                error(f"{path} was written by another version of fleetctl", "remove the folder and import again")
            )
        if data.get("request") != dict(request):
            raise FleetctlError(
                error(
                    "--resume must repeat the interrupted import's options",
                    f"it was: {json.dumps(data.get('request'), sort_keys=True)}",
                )
            )
        cp = cls(out, request, data)
        cp._trim()
        return cp

    def _trim(self) -> None:
        """Drop lines written after the last recorded count (a crash between append and save)."""
        for kind, count in self.data["kinds"].items():
            self._truncate(self._file(kind), count)
        for kind, page in self.data["pages"].items():
            self._truncate(self._file(kind), page["count"])
        self._truncate(self.dir / "materials.jsonl", self.data["materials"])

    @staticmethod
    def _truncate(path: Path, count: int) -> None:
        if not path.exists():
            return
        with path.open(encoding="utf-8") as fh:
            lines = list(itertools.islice(fh, count))
        fsutil.write_atomic(path, "".join(lines))

    # ------------------------------------------------------------------ io
    def _file(self, kind: str) -> Path:
        return self.dir / f"{kind}.jsonl"

    def _save(self) -> None:
        fsutil.write_atomic(self.path, json.dumps(self.data, indent=1, sort_keys=True) + "\n")

    def _append(self, path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
        with fsutil.open_append(path) as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")  # key order kept: it is the output's
            fh.flush()
            os.fsync(fh.fileno())

    def _read(self, path: Path, count: int) -> list[dict[str, Any]]:
        if not path.exists():
            return []
        with path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in itertools.islice(fh, count)]

    # ------------------------------------------------------------------ kinds and pages
    def known(self) -> dict[str, list[ActualResource]]:
        """The actual state of every finished kind."""
        with self._lock:
            return {
                kind: [resource_from_json(row) for row in self._read(self._file(kind), count)]
                for kind, count in sorted(self.data["kinds"].items())
            }

    def pages_from(self, kind: str) -> tuple[str | None, list[ActualResource]] | None:
        """(next page token, resources read so far) of an unfinished paged kind."""
        with self._lock:
            page = self.data["pages"].get(kind)
            if page is None:
                return None
            return page["next"], [resource_from_json(row) for row in self._read(self._file(kind), page["count"])]

    def page_done(self, kind: str, next_token: str | None, resources: list[ActualResource]) -> None:
        with self._lock:
            page = self.data["pages"].setdefault(kind, {"next": None, "pages": 0, "count": 0})
            if page["count"] == 0:
                self._file(kind).unlink(missing_ok=True)
            self._append(self._file(kind), map(resource_to_json, resources))
            page.update(next=next_token, pages=page["pages"] + 1, count=page["count"] + len(resources))
            self._save()

    def restart_pages(self, kind: str) -> None:
        """Forget a page walk (its token was refused): the kind is read again from its first page."""
        with self._lock:
            self.data["pages"].pop(kind, None)
            self._file(kind).unlink(missing_ok=True)
            self._save()

    def kind_done(self, kind: str, resources: list[ActualResource]) -> None:
        with self._lock:
            page = self.data["pages"].pop(kind, None)
            if page is None or page["count"] != len(resources):
                self._file(kind).unlink(missing_ok=True)
                self._append(self._file(kind), map(resource_to_json, resources))
            self.data["kinds"][kind] = len(resources)
            self._save()

    def pages_recorded(self, kind: str) -> int:
        with self._lock:
            return int(self.data["pages"].get(kind, {}).get("pages", 0))

    # ------------------------------------------------------------------ materials (public files per resource)
    def materials(self) -> dict[str, dict[str, str]]:
        with self._lock:
            return {
                row["address"]: row["files"] for row in self._read(self.dir / "materials.jsonl", self.data["materials"])
            }

    def add_materials(self, batch: Mapping[str, Mapping[str, str]]) -> None:
        with self._lock:
            self._append(
                self.dir / "materials.jsonl", ({"address": a, "files": dict(f)} for a, f in sorted(batch.items()))
            )
            self.data["materials"] += len(batch)
            self._save()

    # ------------------------------------------------------------------ output bookkeeping
    def previously_written(self) -> list[str]:
        return list(self.data.get("written", []))

    def record_written(self, files: list[str]) -> None:
        with self._lock:
            self.data["written"] = sorted(files)
            self._save()

    @staticmethod
    def forget_output(out: Path, request: Mapping[str, Any]) -> None:
        """Remove what an earlier run of this same interrupted import wrote (it is written again), so that a
        fleet containing `out` does not count it as already declared."""
        try:
            data = json.loads((out / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if data.get("request") != dict(request):
            return
        for rel in data.get("written", []):
            (out / rel).unlink(missing_ok=True)

    def remove(self) -> None:
        """The import is complete: its read state is not needed any more."""
        shutil.rmtree(self.dir, ignore_errors=True)
        self.path.unlink(missing_ok=True)
