"""`fleetctl history`: how each resource's manifest changed, commit by commit, as a field-level diff between the
resource's documents (not between file texts: a renamed file or a resource moved between files is the same resource)."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.audit.git import Git, Located, ManifestHistory, Revision, address_matcher
from engine.diff import diff_values
from engine.kinds import ListKey
from engine.model import Elem
from engine.plan.fieldview import field_lines


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
        if self.segments and self.segments != tuple(self.path.split(".")):  # as in the plan file
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
        out: dict[str, Any] = {
            "commit": r.commit,
            "author": r.author,
            "email": r.email,
            "date": r.date,
            "message": r.message,
            "change": self.change.value,
            "file": self.file,
            "line": self.line,
        }
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
    return HistoryEvent(
        address,
        HistoryChange.UPDATED if fields else HistoryChange.MOVED,
        rev,
        after.file,
        after.line,
        before.file if moved else None,
        fields,
    )


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
        return (
            json.dumps(
                {"resources": [{"address": a, "events": [e.to_json() for e in evs]} for a, evs in events.items()]},
                indent=2,
                ensure_ascii=False,
            )
            + "\n"
        )
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
            for f in e.fields:  # in full, folded (engine/plan/fieldview.py), never cut
                lines += field_lines(f.op.value, f.path, f.before, f.after)
        lines.append("")
    return "\n".join(lines) if lines else "No history: no commit changed a matching resource.\n"
