"""What each thing may connect as, publish, subscribe and receive, folded so that a 100,000-thing fleet is a
handful of rows.

Why: a reviewer or an auditor reads permissions per device, not per policy text. Things whose permissions are the
same up to their own name and variables (`fold_key(all_variables=True)`: same policies in effect, same condition
outcomes, the same variables resolvable) are evaluated once, symbolically: the thing's name stays `${thing}`, its
other variables stay variables (`${Thing.Attributes[site]}`, `${Certificate.Subject.CommonName}`), so a
100,000-thing fleet is a handful of rows. Rows that end up identical (e.g. two policies with the same
statements) are merged, with the count of things. A variable that does not resolve for a thing drops the
resource that uses it, as AWS does, and puts the thing in a row of its own.

A cell lists the resource patterns the Allow statements in effect grant for the action (for the matrix, the
device connects with its thing name as client id, as the developer guide recommends for thing policy variables),
then the patterns a Deny takes away (`deny ...`); a NotResource statement reads `every resource except ...`.
Statements whose conditions do not hold for the fold are left out; `fleetctl authz check` answers one concrete
request exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.authz.evaluate import action_applies, conditions_hold
from engine.authz.policy import ESCAPES, Effect, own_name
from engine.authz.principals import AuthzFleet, Connection, ThingNode, all_connections, fold, symbolic_keep
from engine.authz.variables import substitute

COLUMNS = (
    ("connect as", "iot:Connect", "client"),
    ("publish", "iot:Publish", "topic"),
    ("subscribe", "iot:Subscribe", "topicfilter"),
    ("receive", "iot:Receive", "topic"),
)
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
    connection: str  # "certificate", "provisioned certificate", or a refusal
    cells: tuple[Cell, ...]

    @property
    def count(self) -> int:
        return len(self.things)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "count": self.count,
            "things": list(self.things),
            "connection": self.connection,
            **{name.replace(" ", "_"): cell.to_json() for (name, _, _), cell in zip(COLUMNS, self.cells, strict=True)},
        }


def _display(
    fleet: AuthzFleet, target: str, rtype: str, text: str, kept: Iterable[str], own: Iterable[str] = (), name: str = ""
) -> str:
    """A pattern as the matrix shows it: without the ARN prefix of the column's resource type, the thing's own
    name (and variables equal to it) as `${thing}`, other kept variables shortened (`${Thing.Attributes[site]}`)."""
    prefix = fleet.arn(target, rtype, "")
    shown = text[len(prefix) :] if text.startswith(prefix) else text
    own = set(own)
    if name:
        shown = own_name(name).sub(THING_TOKEN, shown)  # a literal own name reads as the thing's name
    for var in kept:
        short = THING_TOKEN if var in own else "${" + var.removeprefix("iot:Connection.").removeprefix("iot:") + "}"
        shown = shown.replace("${" + var + "}", short)
    for escape, char in ESCAPES.items():
        shown = shown.replace(escape, char)
    return shown


def cell(fleet: AuthzFleet, conn: Connection, action: str, rtype: str, *, all_variables: bool = False) -> Cell:
    """The patterns `conn` is allowed / denied for `action`, with its thing's own name kept as `${thing}` (and,
    with `all_variables`, its other variables kept symbolic too)."""
    name = conn.thing.name
    keep = symbolic_keep(conn, name, all_variables=all_variables)
    own = symbolic_keep(conn, name) if all_variables else keep
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
                        into.append(
                            _display(fleet, conn.thing.target, rtype, text, keep, own, name if all_variables else "")
                        )
            elif st.not_resources is not None:
                texts = [substitute(p, session) for p in st.not_resources]
                if all(t is not None for t in texts):
                    shown = ", ".join(
                        _display(fleet, conn.thing.target, rtype, t, keep, own, name if all_variables else "")
                        for t in texts
                        if t
                    )
                    into.append(f"every resource except {shown}")
    return Cell(tuple(sorted(set(allow))), tuple(sorted(set(deny))))


def matrix(fleet: AuthzFleet, things: Sequence[ThingNode] | None = None) -> list[Row]:
    """One row per distinct set of permissions, with the things that have it."""
    rows: dict[tuple[Any, ...], list[str]] = {}
    for f in fold(all_connections(fleet, things), all_variables=True):
        conn = f.representative
        if conn.refused:
            cells = tuple(Cell() for _ in COLUMNS)
            how = f"refused ({conn.certificate.status if conn.certificate else ''} certificate)"
        else:
            cells = tuple(cell(fleet, conn, action, rtype, all_variables=True) for _, action, rtype in COLUMNS)
            how = "certificate" if conn.certificate else "provisioned certificate (none declared)"
        rows.setdefault((conn.thing.target, how, cells), []).extend(m.thing.name for m in f.members)
    out = [Row(target, tuple(sorted(set(names))), how, cells) for (target, how, cells), names in rows.items()]
    return sorted(out, key=lambda r: (r.target, -r.count, r.things[0]))
