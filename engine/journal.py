"""The append-only apply journal (JSON lines).

Before each change and each mutating cloud call apply appends a `begin` entry, and `success`/`failure`
after, with the plan id, address, action, git commit, actor and the cloud request id. A change `begin`
without an end is an interrupted apply: the next plan reports it, and the next apply converges (every
handler is idempotent). Once a later apply has converged such a change (it succeeded at that address, or its
plan re-read the address and found nothing to change) it appends a `reconciled` entry naming the open begin
(`reconciles`: the begin's plan id, `addresses`), and the warning stops. No secret value is ever written here:
entries hold names, ids and error codes. The file is created 0600 and only ever appended to.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import fsutil
from engine.clock import Clock, iso


@dataclass
class Journal:
    path: Path
    clock: Clock
    plan_id: str = ""
    git_commit: str | None = None
    actor: str = "unknown"

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.path = Path(self.path)
        self._fh: Any = None

    def write(self, event: str, **fields: Any) -> None:
        """Append one entry and make it durable (fsync) before returning: a `begin` must survive a crash."""
        entry = {
            "ts": iso(self.clock()),
            "event": event,
            "planId": self.plan_id,
            "gitCommit": self.git_commit,
            "actor": self.actor,
            **{k: v for k, v in fields.items() if v is not None},
        }
        line = json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n"
        with self._lock:
            if self._fh is None:  # append-only, 0600 (an older 0644 journal is narrowed)
                self._fh = fsutil.open_append(self.path)
            self._fh.write(line)
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


def read_entries(path: Path) -> Iterator[dict[str, Any]]:
    for _, entry in numbered_entries(path):
        yield entry


def numbered_entries(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based line number, entry): the line number is how a message names one entry (`journal.jsonl:57`)."""
    try:
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                line = line.strip()
                if line:
                    try:
                        entry = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut by a crash mid-write
                    if isinstance(entry, dict):
                        yield number, entry
    except FileNotFoundError:
        return


def applied(path: Path, plan_id: str) -> dict[str, Any] | None:
    """The apply that carried out plan `plan_id` to its end with no failure and nothing skipped: its
    `apply-end` entry and that entry's line (`line`), or None. The latest such apply when there are several."""
    found = None
    for number, e in numbered_entries(path):
        if (
            e.get("event") == "apply-end"
            and e.get("planId") == plan_id
            and not e.get("failed")
            and not e.get("skipped")
        ):
            found = {**e, "line": number}
    return found


def interrupted(path: Path) -> list[dict[str, Any]]:
    """Changes whose `begin` has no `success`/`failure` (the apply was killed), latest plan first."""
    open_changes: dict[tuple[str, str], dict[str, Any]] = {}
    for e in read_entries(path):
        if "op" in e:
            continue
        if e.get("event") == "reconciled":  # a later apply converged these open begins of plan `reconciles`
            for address in e.get("addresses", []):
                open_changes.pop((e.get("reconciles", ""), address), None)
            continue
        key = (e.get("planId", ""), e.get("address", ""))
        if e.get("event") == "begin":
            open_changes[key] = e
        elif e.get("event") in ("success", "failure", "skipped"):
            open_changes.pop(key, None)
    return [
        {"planId": e.get("planId"), "address": e.get("address"), "action": e.get("action"), "since": e.get("ts")}
        for e in sorted(open_changes.values(), key=lambda x: (x.get("ts", ""), x.get("address", "")))
    ]


def interrupted_tasks(path: Path) -> list[dict[str, Any]]:
    """Provider tasks a batch started (`task-started`, e.g. an AWS bulk registration task) with no `task-ended`:
    the apply was killed while the task ran in the cloud, where it goes on. A later apply of another plan that
    ran to its end (it re-read the state the task left, and waited for the task if it still ran) closes them."""
    started: dict[str, dict[str, Any]] = {}
    for e in read_entries(path):
        if e.get("event") == "task-started" and e.get("taskId"):
            started[e["taskId"]] = e
        elif e.get("event") == "task-ended":
            started.pop(e.get("taskId", ""), None)
        elif e.get("event") == "apply-end":
            started = {k: v for k, v in started.items() if v.get("planId") == e.get("planId")}
    return [
        {
            "planId": e.get("planId"),
            "taskId": e["taskId"],
            "input": e.get("input"),
            "changes": e.get("changes"),
            "task": e.get("task"),
            "since": e.get("ts"),
        }
        for e in sorted(started.values(), key=lambda x: x.get("ts", ""))
    ]
