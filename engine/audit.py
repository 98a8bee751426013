"""The audit trail: what the manifests said over time (git), and what apply did about it (the journal).

Auditors ask two questions, answered here without any cloud call:
- `fleetctl history [ADDRESS]`: how did this resource's manifest change, in which commit, by whom? Every
  revision's manifests are read straight from git objects (`git ls-tree`, `git cat-file`), parsed with the
  manifest loader and keyed by resource address, so a renamed file or a resource moved to another file is the
  same resource; the field-level diff is between the resource's documents, not between file texts.
- `fleetctl journal [ADDRESS] [--request-id ID]`: which plan, commit and pull request changed this resource,
  when, and through which cloud requests. It reads the apply journal (DESIGN §1.4) and, where the journal has
  no pull-request number, finds it in git (a merge commit "Merge pull request #N" or a squash "(#N)").
"""
from __future__ import annotations

import enum
import fnmatch
import json
import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import click

from engine import console
from engine import kinds as registry
from engine.diagnostics import FleetctlError, error
from engine.diff import diff_values
from engine.journal import read_entries
from engine.kinds import ListKey
from engine.manifest.fleet import address_for
from engine.manifest.loader import SKIP_DIRS, Document, parse_text
from engine.model import Address, Elem
from engine.plan.fieldview import field_lines

EXIT_OK = 0


# ------------------------------------------------------------------------------------------- addresses
def document_address(data: Any) -> Address | None:
    """The address of a raw manifest document, before validation: the same as `Manifest.address` for a kind
    the registry knows; for a kind it does not (yet) know, provider from the apiVersion group and the Target
    from metadata. None when the document has no kind or name."""
    if not isinstance(data, dict):
        return None
    api_version, kind, metadata = data.get("apiVersion"), data.get("kind"), data.get("metadata")
    if not (isinstance(api_version, str) and isinstance(kind, str) and isinstance(metadata, dict)):
        return None
    name, target = metadata.get("name"), metadata.get("target")
    if not isinstance(name, str) or not name:
        return None
    target = target if isinstance(target, str) else None
    decl = registry.lookup_group(api_version, kind)     # history reads manifests of any version
    if decl is not None:
        return address_for(decl, name, target)
    group = api_version.rsplit("/", 1)[0]
    provider = "fleetctl" if group == "fleetctl.io" else group.split(".", 1)[0]
    return Address.of(provider, target, kind, name) if target else Address.of(provider, kind, name)


def address_matcher(pattern: str | None):
    """A predicate over addresses: exact, a glob (`aws/*/Thing/*`), or a bare name (`DA1275B0`)."""
    if not pattern:
        return lambda address: True
    if any(ch in pattern for ch in "*?["):
        return lambda address: fnmatch.fnmatchcase(address, pattern)
    if "/" not in pattern:
        return lambda address: address.rsplit("/", 1)[-1] == pattern
    return lambda address: address == pattern


# ----------------------------------------------------------------------------------------------- git
class Git:
    """A git repository read through the git command line (plumbing commands only; nothing is written)."""

    def __init__(self, path: Path) -> None:
        start = path if path.is_dir() else path.parent
        out = self._run_in(start, "rev-parse", "--show-toplevel", check=False)
        if out is None:
            raise FleetctlError(error(f"{path} is not inside a git repository",
                                      "history is read from git: run it in the fleet repository"))
        self.top = Path(out.strip())
        rel = os.path.relpath(path.resolve(), self.top.resolve())
        self.prefix = "" if rel == "." else PurePosixPath(Path(rel)).as_posix()
        self._blobs: dict[str, str] = {}

    @staticmethod
    def _run_in(cwd: Path, *args: str, check: bool = True) -> str | None:
        try:
            proc = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=60,
                                  env={**os.environ, "GIT_PAGER": "cat", "LC_ALL": "C"})
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FleetctlError(error(f"cannot run git: {exc}")) from None
        if proc.returncode != 0:
            if check:
                raise FleetctlError(error(f"git {args[0]} failed: {proc.stderr.strip() or proc.returncode}"))
            return None
        return proc.stdout

    def run(self, *args: str, check: bool = True) -> str | None:
        return self._run_in(self.top, *args, check=check)

    def verify(self, rev: str) -> str:
        out = self.run("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        if not out:
            raise FleetctlError(error(f"unknown revision '{rev}'", "give a commit, tag or branch of this repository"))
        return out.strip()

    def blobs(self, shas: Iterable[str]) -> dict[str, str]:
        """The text of each blob, read once (`git cat-file --batch`) and cached for the whole run."""
        missing = sorted({s for s in shas if s not in self._blobs})
        if missing:
            proc = subprocess.run(["git", "-C", str(self.top), "cat-file", "--batch"],
                                  input=("\n".join(missing) + "\n").encode(), capture_output=True, timeout=120)
            data, pos = proc.stdout, 0
            for sha in missing:
                header_end = data.index(b"\n", pos)
                parts = data[pos:header_end].split()
                size = int(parts[2]) if len(parts) == 3 else 0
                body = data[header_end + 1: header_end + 1 + size]
                self._blobs[sha] = body.decode("utf-8", errors="replace")
                pos = header_end + 1 + size + 1
        return {s: self._blobs[s] for s in shas}


@dataclass(frozen=True)
class Revision:
    commit: str
    parent: str | None
    author: str
    email: str
    date: str
    message: str


def _is_manifest_path(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return (path.endswith((".yaml", ".yml")) and not any(p.startswith(".") for p in parts)
            and not any(p in SKIP_DIRS for p in parts[:-1]))


@dataclass(frozen=True)
class Located:
    """One resource's document at one revision: where it was written and what it said."""

    address: str
    file: str
    line: int
    body: Mapping[str, Any]
    lists: tuple[ListKey, ...] = ()       # the kind's list declarations, under `spec.` (engine/diff.py)


class ManifestHistory:
    """Each revision's manifests under the fleet folder, keyed by address (cached by the folder's tree id)."""

    def __init__(self, git: Git) -> None:
        self.git = git
        self._states: dict[str, dict[str, Located]] = {}

    def revisions(self, since: str | None) -> list[Revision]:
        spec = f"{self.git.verify(since)}..HEAD" if since else "HEAD"
        if self.git.run("rev-parse", "--verify", "--quiet", "HEAD", check=False) is None:
            return []
        out = self.git.run("log", "--no-merges", "--topo-order", "--reverse",
                           "--format=%H%x1f%P%x1f%an%x1f%ae%x1f%aI%x1f%s%x1e", spec, "--", self.git.prefix or ".")
        revs = []
        for record in (out or "").split("\x1e"):
            record = record.strip("\n")
            if not record:
                continue
            commit, parents, author, email, date, message = record.split("\x1f")
            revs.append(Revision(commit, parents.split()[0] if parents else None, author, email, date, message))
        return revs

    def state(self, rev: str | None) -> dict[str, Located]:
        if rev is None:
            return {}
        tree = self.git.run("rev-parse", "--verify", "--quiet", f"{rev}:{self.git.prefix}" if self.git.prefix
                            else f"{rev}^{{tree}}", check=False)
        if not tree:
            return {}
        tree = tree.strip()
        if tree not in self._states:
            self._states[tree] = self._load(tree)
        return self._states[tree]

    def _load(self, tree: str) -> dict[str, Located]:
        listing = self.git.run("ls-tree", "-r", "-z", tree) or ""
        files: list[tuple[str, str]] = []
        for entry in listing.split("\0"):
            if not entry:
                continue
            meta, path = entry.split("\t", 1)
            _mode, kind, sha = meta.split()
            if kind == "blob" and _is_manifest_path(path):
                files.append((path, sha))
        texts = self.git.blobs([sha for _, sha in files])
        state: dict[str, Located] = {}
        for path, sha in sorted(files):
            shown = f"{self.git.prefix}/{path}" if self.git.prefix else path
            docs, _diags = parse_text(texts[sha], shown)   # a revision with broken YAML: its other files still count
            for doc in docs:
                located = _locate(doc)
                if located is not None and located.address not in state:
                    state[located.address] = located
        return state


def _locate(doc: Document) -> Located | None:
    address = document_address(doc.data)
    if address is None:
        return None
    metadata = {k: v for k, v in doc.data["metadata"].items() if k != "name"}
    body = {"apiVersion": doc.data.get("apiVersion"), "metadata": metadata, "spec": doc.data.get("spec", {})}
    api_version, kind = doc.data.get("apiVersion"), doc.data.get("kind")
    decl = registry.lookup(api_version, kind) if isinstance(api_version, str) and isinstance(kind, str) else None
    lists = tuple(ListKey("spec." + rule.path, rule.by, rule.key) for rule in (decl.lists if decl else ()))
    return Located(str(address), doc.file, doc.source(("metadata", "name")).line, body, lists)


# ------------------------------------------------------------------------------------------- field diff
class FieldOp(enum.Enum):
    ADD = "add"
    CHANGE = "change"
    REMOVE = "remove"

    @property
    def symbol(self) -> str:
        return {"add": "+", "change": "~", "remove": "-"}[self.value]


@dataclass(frozen=True)
class FieldDiff:
    op: FieldOp
    path: str
    before: Any = None
    after: Any = None
    segments: tuple[Any, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op.value, "path": self.path}
        if self.segments and self.segments != tuple(self.path.split(".")):   # as in the plan file
            out["segments"] = [s.to_json() if isinstance(s, Elem) else s for s in self.segments]
        if self.op is not FieldOp.ADD:
            out["before"] = self.before
        if self.op is not FieldOp.REMOVE:
            out["after"] = self.after
        return out


def field_diff(before: Any, after: Any, lists: Iterable[ListKey] = ()) -> list[FieldDiff]:
    """Leaf-level differences between two documents: maps key by key, lists as the kind declares them (sets,
    keyed, typed) or in order (engine/diff.py), so one changed element is one entry."""
    return [FieldDiff(FieldOp(f.op), f.path, f.before, f.after, f.segments) for f in diff_values(before, after, lists)]


# -------------------------------------------------------------------------------------------- history
class HistoryChange(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    MOVED = "moved"
    DELETED = "deleted"


@dataclass(frozen=True)
class HistoryEvent:
    address: str
    change: HistoryChange
    revision: Revision
    file: str
    line: int
    previous_file: str | None = None
    fields: tuple[FieldDiff, ...] = ()

    def to_json(self) -> dict[str, Any]:
        r = self.revision
        out: dict[str, Any] = {"commit": r.commit, "author": r.author, "email": r.email, "date": r.date,
                               "message": r.message, "change": self.change.value, "file": self.file,
                               "line": self.line}
        if self.previous_file:
            out["previousFile"] = self.previous_file
        out["fields"] = [f.to_json() for f in self.fields]
        return out


def _events(address: str, before: Located | None, after: Located | None, rev: Revision) -> HistoryEvent | None:
    if before is None and after is not None:
        return HistoryEvent(address, HistoryChange.CREATED, rev, after.file, after.line)
    if after is None and before is not None:
        return HistoryEvent(address, HistoryChange.DELETED, rev, before.file, before.line)
    assert before is not None and after is not None
    fields = tuple(field_diff(before.body, after.body, after.lists or before.lists))
    moved = before.file != after.file
    if not fields and not moved:
        return None
    return HistoryEvent(address, HistoryChange.UPDATED if fields else HistoryChange.MOVED, rev, after.file,
                        after.line, before.file if moved else None, fields)


def history(path: Path, address: str | None = None, since: str | None = None) -> dict[str, list[HistoryEvent]]:
    """Per-resource history of the manifests under `path`, oldest first. Raises FleetctlError outside git."""
    git = Git(Path(path))
    manifests = ManifestHistory(git)
    wanted = address_matcher(address)
    out: dict[str, list[HistoryEvent]] = {}
    for rev in manifests.revisions(since):
        before, after = manifests.state(rev.parent), manifests.state(rev.commit)
        for addr in sorted(set(before) | set(after)):
            if not wanted(addr):
                continue
            event = _events(addr, before.get(addr), after.get(addr), rev)
            if event is not None:
                out.setdefault(addr, []).append(event)
    return dict(sorted(out.items()))


def render_history(events: Mapping[str, list[HistoryEvent]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps({"resources": [{"address": a, "events": [e.to_json() for e in evs]}
                                         for a, evs in events.items()]}, indent=2, ensure_ascii=False) + "\n"
    lines: list[str] = []
    for address, evs in events.items():
        lines.append(address)
        for e in evs:
            r = e.revision
            lines.append(f"  {r.commit[:12]}  {r.date}  {r.author} <{r.email}>  {r.message}")
            where = f"{e.file}:{e.line}"
            if e.change is HistoryChange.CREATED:
                lines.append(f"      created in {where}")
            elif e.change is HistoryChange.DELETED:
                lines.append(f"      deleted from {where}")
            elif e.previous_file:
                lines.append(f"      moved from {e.previous_file} to {where}")
            for f in e.fields:        # in full, folded (engine/plan/fieldview.py), never cut
                lines += field_lines(f.op.value, f.path, f.before, f.after)
        lines.append("")
    return "\n".join(lines) if lines else "No history: no commit changed a matching resource.\n"


# -------------------------------------------------------------------------------------------- journal
_PR_MERGE = re.compile(r"^Merge pull request #(\d+)\b")
_PR_SQUASH = re.compile(r"\(#(\d+)\)\s*$")


def pull_request_for(git: Git | None, commit: str | None) -> int | None:
    """The pull request that brought `commit` to the branch, found in git: a merge commit "Merge pull request
    #N" with `commit` among its merged parents, or the commit's own squash subject "... (#N)"."""
    if git is None or not commit:
        return None
    subject = git.run("log", "-1", "--format=%s", commit, check=False)
    if subject is None:
        return None                      # the commit is not in this clone (a squashed branch head)
    found = _PR_SQUASH.search(subject.strip())
    if found:
        return int(found.group(1))
    merges = git.run("log", "--merges", "--format=%H%x1f%P%x1f%s", "--ancestry-path", f"{commit}..HEAD",
                     check=False) or ""
    for line in reversed(merges.splitlines()):     # the oldest merge that brought the commit in
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
        return {"op": self.op, "outcome": self.outcome, "requestId": self.request_id,
                **({"error": self.error} if self.error else {})}


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
        return {"address": self.address, "action": self.action, "outcome": self.outcome.value,
                "started": self.started, "finished": self.finished, "requestIds": self.request_ids,
                "calls": [c.to_json() for c in self.calls], **({"error": self.error} if self.error else {})}


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
        return {"planId": self.plan_id, "gitCommit": self.git_commit, "pullRequest": self.pull_request,
                "runUrl": self.run_url, "actor": self.actor, "started": self.started, "finished": self.finished,
                "summary": counts, "changes": [c.to_json() for c in self.changes.values()]}


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


def journal_report(journal_paths: Iterable[Path], address: str | None = None, request_id: str | None = None,
                   plan_id: str | None = None, git: Git | None = None) -> list[ApplyRecord]:
    """Applies (and within them the changes) matching the filters, each tied to its commit and pull request."""
    entries: list[dict[str, Any]] = []
    for path in journal_paths:
        if not Path(path).is_file():
            raise FleetctlError(error(f"no journal at {path}",
                                      "give --journal FILE (in CI: the fleetctl-journal artifact of the apply run)"))
        entries.extend(read_entries(Path(path)))
    wanted = address_matcher(address)
    out: list[ApplyRecord] = []
    for rec in journal_records(entries):
        if plan_id and rec.plan_id != plan_id:
            continue
        rec.changes = {a: c for a, c in rec.changes.items() if wanted(a)
                       and (not request_id or request_id in c.request_ids)}
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
        lines.append(f"apply {r.plan_id}  commit {commit}{pr}  actor {r.actor or 'unknown'}  "
                     f"{r.started or '?'} → {r.finished or 'not finished'}")
        if r.run_url:
            lines.append(f"  run {r.run_url}")
        for c in r.changes.values():
            lines.append(f"  {c.outcome.value:<11} {c.action or '?':<7} {c.address}  {c.started or ''}"
                         + (f"  error: {c.error}" if c.error else ""))
            for call in c.calls:
                rid = f"request id {call.request_id}" if call.request_id else "no request id"
                error_text = f"  ({call.error})" if call.error else ""
                lines.append(f"      {call.op:<32} {call.outcome:<11} {rid}{error_text}")
        lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ CLI
TEXT_OR_JSON = click.Choice(["text", "json"])


@click.command("history")
@click.argument("address", required=False)
@click.option("--since", help="only commits after this revision (commit, tag or branch)")
@click.option("--fleet", "fleet_path", default="fleet", show_default=True, type=click.Path(),
              help="the fleet folder inside a git repository")
@click.option("--format", "fmt", type=TEXT_OR_JSON, default="text", show_default=True)
def history_command(address: str | None, since: str | None, fleet_path: str, fmt: str) -> None:
    """Per-resource manifest history from git: commit, author, date, message and the field-level diff.

    ADDRESS is a resource address (aws/aws-eu/Thing/DA1275B0), a glob (aws/*/Policy/*) or a bare name;
    without it every resource is shown. Renamed files and resources moved between files are followed.
    """
    events = history(Path(fleet_path), address, since)
    console.echo(render_history(events, fmt), nl=False, style=fmt == "text")


@click.command("journal")
@click.argument("address", required=False)
@click.option("--journal", "journals", multiple=True, type=click.Path(),
              help="journal file(s) (default: $FLEETCTL_JOURNAL or .fleetctl/journal.jsonl); repeatable")
@click.option("--request-id", help="only the change whose cloud calls include this request id")
@click.option("--plan", "plan_id", help="only this plan id")
@click.option("--fleet", "fleet_path", default="fleet", show_default=True, type=click.Path(),
              help="the fleet folder (its git repository resolves commits to pull requests)")
@click.option("--format", "fmt", type=TEXT_OR_JSON, default="text", show_default=True)
def journal_command(address: str | None, journals: tuple[str, ...], request_id: str | None, plan_id: str | None,
                    fleet_path: str, fmt: str) -> None:
    """What apply did: per change the plan, commit, pull request, outcome, time and cloud request ids.

    From a cloud change back to its review: `fleetctl journal --request-id ID` names the plan, the commit
    and the pull request that carried it out.
    """
    paths = [Path(j) for j in journals] or [Path(os.environ.get("FLEETCTL_JOURNAL", ".fleetctl/journal.jsonl"))]
    fleet = Path(fleet_path)
    git = None
    if fleet.exists() and Git._run_in(fleet if fleet.is_dir() else fleet.parent, "rev-parse", check=False) is not None:
        git = Git(fleet)
    records = journal_report(paths, address, request_id, plan_id, git)
    console.echo(render_journal(records, fmt), nl=False, style=fmt == "text")


commands = [history_command, journal_command]
