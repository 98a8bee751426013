"""`fleetctl journal`: what apply did, per change: the plan, commit, pull request (from the journal, or found in git),
outcome, time and the cloud request ids of every call."""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.audit.git import Git, address_matcher
from engine.diagnostics import FleetctlError, error
from engine.journal import read_entries

_PR_MERGE = re.compile(r"^Merge pull request #(\d+)\b")
_PR_SQUASH = re.compile(r"\(#(\d+)\)\s*$")


def pull_request_for(git: Git | None, commit: str | None) -> int | None:
    """The pull request that brought `commit` to the branch, found in git: a merge commit "Merge pull request
    #N" with `commit` among its merged parents, or the commit's own squash subject "... (#N)"."""
    if git is None or not commit:
        return None
    subject = git.run("log", "-1", "--format=%s", commit, check=False)
    if subject is None:
        return None  # the commit is not in this clone (a squashed branch head)
    found = _PR_SQUASH.search(subject.strip())
    if found:
        return int(found.group(1))
    merges = (
        git.run("log", "--merges", "--format=%H%x1f%P%x1f%s", "--ancestry-path", f"{commit}..HEAD", check=False) or ""
    )
    for line in reversed(merges.splitlines()):  # the oldest merge that brought the commit in
        _sha, parents, msg = (line.split("\x1f") + ["", ""])[:3]
        merged = _PR_MERGE.match(msg)
        if merged and commit in parents.split()[1:]:
            return int(merged.group(1))
    return None


class Outcome(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"


@dataclass
class Call:
    op: str
    outcome: str
    request_id: str | None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "outcome": self.outcome,
            "requestId": self.request_id,
            **({"error": self.error} if self.error else {}),
        }


@dataclass
class ChangeRecord:
    """One change of one apply as the journal tells it: outcome, timing and the cloud calls that carried it."""

    plan_id: str
    address: str
    action: str | None = None
    started: str | None = None
    finished: str | None = None
    outcome: Outcome = Outcome.INTERRUPTED
    error: str | None = None
    calls: list[Call] = field(default_factory=list)

    @property
    def request_ids(self) -> list[str]:
        return [c.request_id for c in self.calls if c.request_id]

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "action": self.action,
            "outcome": self.outcome.value,
            "started": self.started,
            "finished": self.finished,
            "requestIds": self.request_ids,
            "calls": [c.to_json() for c in self.calls],
            **({"error": self.error} if self.error else {}),
        }


@dataclass
class ApplyRecord:
    plan_id: str
    git_commit: str | None = None
    actor: str | None = None
    started: str | None = None
    finished: str | None = None
    pull_request: int | None = None
    run_url: str | None = None
    changes: dict[str, ChangeRecord] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        counts = {o.value: 0 for o in Outcome}
        for c in self.changes.values():
            counts[c.outcome.value] += 1
        return {
            "planId": self.plan_id,
            "gitCommit": self.git_commit,
            "pullRequest": self.pull_request,
            "runUrl": self.run_url,
            "actor": self.actor,
            "started": self.started,
            "finished": self.finished,
            "summary": counts,
            "changes": [c.to_json() for c in self.changes.values()],
        }


def _as_pr(value: Any) -> int | None:
    text = str(value or "").lstrip("#")
    return int(text) if text.isdigit() else None


def journal_records(entries: Iterable[Mapping[str, Any]]) -> list[ApplyRecord]:
    """Fold journal lines into applies and their changes (in journal order)."""
    applies: dict[str, ApplyRecord] = {}
    for e in entries:
        plan_id = str(e.get("planId", ""))
        rec = applies.setdefault(plan_id, ApplyRecord(plan_id))
        rec.git_commit = rec.git_commit or e.get("gitCommit")
        rec.actor = rec.actor or e.get("actor")
        event, ts = e.get("event"), e.get("ts")
        if event == "apply-start":
            rec.started = rec.started or ts
            rec.pull_request = rec.pull_request or _as_pr(e.get("pullRequest"))
            rec.run_url = rec.run_url or e.get("runUrl")
            continue
        if event == "apply-end":
            rec.finished = ts
            continue
        address = e.get("address")
        if not address:
            continue
        change = rec.changes.setdefault(address, ChangeRecord(plan_id, address))
        change.action = change.action or e.get("action")
        if "op" in e:
            if event == "begin":
                change.calls.append(Call(e["op"], "interrupted", None))
                continue
            pending = next((c for c in reversed(change.calls) if c.op == e["op"] and c.outcome == "interrupted"), None)
            call = pending or Call(e["op"], "", None)
            if pending is None:
                change.calls.append(call)
            call.outcome, call.request_id, call.error = str(event), e.get("requestId"), e.get("error")
            continue
        if event == "begin":
            change.started = change.started or ts
        elif event in ("success", "failure", "skipped"):
            change.outcome, change.finished = Outcome(event), ts
            change.error = e.get("error") or e.get("reason")
    return list(applies.values())


def journal_report(
    journal_paths: Iterable[Path],
    address: str | None = None,
    request_id: str | None = None,
    plan_id: str | None = None,
    git: Git | None = None,
) -> list[ApplyRecord]:
    """Applies (and within them the changes) matching the filters, each tied to its commit and pull request."""
    entries: list[dict[str, Any]] = []
    for path in journal_paths:
        if not Path(path).is_file():
            raise FleetctlError(
                error(
                    f"no journal at {path}",
                    "give --journal FILE (in CI: the fleetctl-journal artifact of the apply run)",
                )
            )
        entries.extend(read_entries(Path(path)))
    wanted = address_matcher(address)
    out: list[ApplyRecord] = []
    for rec in journal_records(entries):
        if plan_id and rec.plan_id != plan_id:
            continue
        rec.changes = {
            a: c for a, c in rec.changes.items() if wanted(a) and (not request_id or request_id in c.request_ids)
        }
        if not rec.changes and (address or request_id):
            continue
        if rec.pull_request is None:
            rec.pull_request = pull_request_for(git, rec.git_commit)
        out.append(rec)
    return out


def render_journal(records: list[ApplyRecord], fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"applies": [r.to_json() for r in records]}, indent=2, ensure_ascii=False) + "\n"
    if not records:
        return "No journal entries match.\n"
    lines: list[str] = []
    for r in records:
        pr = f" (pull request #{r.pull_request})" if r.pull_request else ""
        commit = (r.git_commit or "unknown commit")[:12]
        lines.append(
            f"apply {r.plan_id}  commit {commit}{pr}  actor {r.actor or 'unknown'}  "
            f"{r.started or '?'} → {r.finished or 'not finished'}"
        )
        if r.run_url:
            lines.append(f"  run {r.run_url}")
        for c in r.changes.values():
            lines.append(
                f"  {c.outcome.value:<11} {c.action or '?':<7} {c.address}  {c.started or ''}"
                + (f"  error: {c.error}" if c.error else "")
            )
            for call in c.calls:
                rid = f"request id {call.request_id}" if call.request_id else "no request id"
                error_text = f"  ({call.error})" if call.error else ""
                lines.append(f"      {call.op:<32} {call.outcome:<11} {rid}{error_text}")
        lines.append("")
    return "\n".join(lines)
