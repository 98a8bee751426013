"""What each thing may connect as, publish, subscribe and receive, folded so that a 100,000-thing fleet is a
handful of rows.

Why: a reviewer or an auditor reads permissions per device, not per policy text. Things whose permissions are the
same up to their own name (`fold_key`) are evaluated once, symbolically: the thing's name stays `${thing}`, every
other variable takes the representative's value (the same for the whole fold by construction). Rows that end up
identical (e.g. two policies with the same statements) are merged, with the count of things.

A cell lists the resource patterns the Allow statements in effect grant for the action (for the matrix, the
device connects with its thing name as client id, as the developer guide recommends for thing policy variables),
then the patterns a Deny takes away (`deny ...`); a NotResource statement reads `every resource except ...`.
Statements whose conditions do not hold for the fold are left out; `fleetctl authz check` answers one concrete
request exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from engine.authz.evaluate import action_applies, conditions_hold
from engine.authz.policy import ESCAPES, Effect
from engine.authz.principals import AuthzFleet, Connection, ThingNode, all_connections, fold, symbolic_keep
from engine.authz.variables import substitute

COLUMNS = (("connect as", "iot:Connect", "client"), ("publish", "iot:Publish", "topic"),
           ("subscribe", "iot:Subscribe", "topicfilter"), ("receive", "iot:Receive", "topic"))
THING_TOKEN = "${thing}"


@dataclass(frozen=True)
class Cell:
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        if not self.allow:
            return ["-"]
        return list(self.allow) + [f"deny {d}" for d in self.deny]

    def to_json(self) -> dict[str, list[str]]:
        return {"allow": list(self.allow), "deny": list(self.deny)}


@dataclass(frozen=True)
class Row:
    target: str
    things: tuple[str, ...]
    connection: str                         # "certificate", "provisioned certificate", or a refusal
    cells: tuple[Cell, ...]

    @property
    def count(self) -> int:
        return len(self.things)

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "count": self.count, "things": list(self.things),
                "connection": self.connection,
                **{name.replace(" ", "_"): cell.to_json() for (name, _, _), cell in zip(COLUMNS, self.cells)}}


def _display(fleet: AuthzFleet, target: str, rtype: str, text: str, kept: Iterable[str]) -> str:
    prefix = fleet.arn(target, rtype, "")
    shown = text[len(prefix):] if text.startswith(prefix) else text
    for var in kept:
        shown = shown.replace("${" + var + "}", THING_TOKEN)
    for escape, char in ESCAPES.items():
        shown = shown.replace(escape, char)
    return shown


def cell(fleet: AuthzFleet, conn: Connection, action: str, rtype: str) -> Cell:
    """The patterns `conn` is allowed / denied for `action`, with its thing's own name kept as `${thing}`."""
    name = conn.thing.name
    keep = symbolic_keep(conn, name)
    session, policies = conn.session(name, keep=keep)
    concrete, _ = conn.session(name)
    allow: list[str] = []
    deny: list[str] = []
    for policy in policies:
        for st in policy.statements:
            if not action_applies(st, action) or not conditions_hold(st, concrete):
                continue
            into = deny if st.effect == Effect.DENY else allow
            if st.resources is not None:
                for pattern in st.resources:
                    text = substitute(pattern, session)
                    if text is not None:
                        into.append(_display(fleet, conn.thing.target, rtype, text, keep))
            elif st.not_resources is not None:
                texts = [substitute(p, session) for p in st.not_resources]
                if all(t is not None for t in texts):
                    shown = ", ".join(_display(fleet, conn.thing.target, rtype, t, keep) for t in texts if t)
                    into.append(f"every resource except {shown}")
    return Cell(tuple(sorted(set(allow))), tuple(sorted(set(deny))))


def matrix(fleet: AuthzFleet, things: Sequence[ThingNode] | None = None) -> list[Row]:
    """One row per distinct set of permissions, with the things that have it."""
    rows: dict[tuple, list[str]] = {}
    for f in fold(all_connections(fleet, things)):
        conn = f.representative
        if conn.refused:
            cells = tuple(Cell() for _ in COLUMNS)
            how = f"refused ({conn.certificate.status if conn.certificate else ''} certificate)"
        else:
            cells = tuple(cell(fleet, conn, action, rtype) for _, action, rtype in COLUMNS)
            how = "certificate" if conn.certificate else "provisioned certificate (none declared)"
        rows.setdefault((conn.thing.target, how, cells), []).extend(m.thing.name for m in f.members)
    out = [Row(target, tuple(sorted(set(names))), how, cells) for (target, how, cells), names in rows.items()]
    return sorted(out, key=lambda r: (r.target, -r.count, r.things[0]))
