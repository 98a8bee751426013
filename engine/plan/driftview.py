"""The drift views of a Plan (`fleetctl drift`): text, markdown (the drift issue / PR comment) and json.

Drift reads a plan the other way round: the manifests are the reference and the actual state is what moved, as
Terraform's "changed outside of Terraform". Like every view it only reads the Plan, shows each field to the leaf and
in full (folded, never cut), and a markdown report that must fit one comment leaves out whole resources from the
end of the list and says how many.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from engine.attention import Attention, by_severity
from engine.model import ADD, CHANGE, REMOVE, SENSITIVE, Action, Change
from engine.plan.fieldview import field_lines, markdown_lines
from engine.plan.model import Plan
from engine.plan.render import (
    MARKDOWN_BUDGET,
    MAX_LISTED,
    attention_markdown,
    attention_text,
    blocked_lines,
    fence,
    fit,
    flag_suffix,
    md_cell,
)


def drift_items(plan: Plan) -> list[tuple[str, Attention]]:
    """The drift perspective: how the actual state differs from the manifests (`Attention.drift`)."""
    return by_severity((str(c.address), a.drift) for c, a in plan.attention if a.drift is not None)


def drift_attention(c: Change) -> tuple[Attention, ...]:
    return tuple(a.drift for a in c.attention if a.drift is not None)


class DriftState:
    """How a resource differs, in drift words (the plan's action read as 'what differs')."""

    MISSING = "missing"  # declared, absent in the cloud
    DIFFERS = "differs"  # exists, some managed fields differ
    NOT_DECLARED = "not declared"  # managed by fleetctl, no longer declared, pruning on
    BLOCKED = "blocked"  # differs in a way no plan can repair (Plan.blocked)

    @staticmethod
    def of(c: Change) -> str:
        return {Action.CREATE: DriftState.MISSING, Action.DELETE: DriftState.NOT_DECLARED}.get(
            c.action, DriftState.DIFFERS
        )


def _orphans(plan: Plan) -> list[str]:
    """Managed resources no manifest declares while pruning is off: drift the plan only warns about."""
    return sorted({d.address for d in plan.diagnostics if d.address and "no longer declared" in d.summary})


# Drift reads a change the other way round from a plan: the manifests are the reference and the actual state
# is what moved, as Terraform's "changed outside of Terraform". A field the plan would add is missing from the
# actual state (-), one the plan would remove was added outside fleetctl (+).
DRIFT_LEGEND = "+ only in the actual state (added outside fleetctl), - only in the manifests, ~ manifest → actual"
_DRIFT_OP = {ADD: REMOVE, REMOVE: ADD, CHANGE: CHANGE}
_DRIFT_WORD = {ADD: "added", REMOVE: "removed", CHANGE: "changed"}


def drift_lines(c: Change, indent: str = "      ", *, markdown: bool = False) -> list[str]:
    """The field differences of a drifted resource, in drift direction (manifest → actual), in full."""
    view = markdown_lines if markdown else field_lines
    return [
        line
        for f in c.fields
        for line in view(_DRIFT_OP[f.op], f.path, f.after, f.before, sensitive=f.sensitive, indent=indent)
    ]


def _drift_field_json(f: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"drift": _DRIFT_WORD[_DRIFT_OP[f.op]], "path": f.path}
    segments = f.to_json().get("segments")
    if segments is not None:
        out["segments"] = segments
    out["manifest"] = SENSITIVE if f.sensitive and f.after is not None else f.after
    out["actual"] = SENSITIVE if f.sensitive and f.before is not None else f.before
    if f.sensitive:
        out["sensitive"] = True
    return out


def _drift_state_cell(c: Change) -> str:
    state = DriftState.of(c)
    if state == DriftState.MISSING:
        return "missing (declared, absent)"
    if state == DriftState.NOT_DECLARED:
        return "not declared (exists, managed)"
    return f"differs: {len(c.fields)} field change(s)"


def _thousands(n: Any) -> str:
    return f"{n:,}" if isinstance(n, int) else str(n)


def read_lines(plan: Plan, markdown: bool = False) -> list[str]:
    """What each snapshot-capable read trusted (engine/providers/aws/trail.py put it in plan.options["reads"]):
    incremental from which snapshot, how many events in which window, when the last full read was; or full, and
    why. Every incremental report says so: a cached link is a claim the reader must be able to weigh."""
    out = []
    q = "`" if markdown else ""
    for r in plan.options.get("reads", []):
        target = f"{q}{r['target']}{q}"
        if r.get("mode") == "incremental":
            every = r.get("everyLinkBecause") or []
            out.append(
                f"Read of {target}: incremental from snapshot {q}{r.get('snapshot', '?')}{q} (read {r.get('snapshotReadAt')}); "
                f"{_thousands(r.get('events', 0))} IoT change event(s) from CloudTrail in {r.get('windowStart')} … "
                f"{r.get('windowEnd')} (including {r.get('overlapSeconds', 0) // 60} min of overlap for CloudTrail's "
                f"delivery delay; {_thousands(r.get('pages', 0))} page(s))"
                + (
                    f"; {_thousands(r['ignoredEvents'])} of them name nothing fleetctl reads"
                    if r.get("ignoredEvents")
                    else ""
                )
                + f"; certificate links re-read for {_thousands(r.get('linksRead', 0))} thing(s), taken from the "
                f"snapshot for {_thousands(r.get('linksKept', 0))}; every list read ran in full; last full read "
                f"{r.get('lastFullRead')}."
            )
            out += [f"  every thing's links were re-read because {why}" for why in every]
        else:
            out.append(
                f"Read of {target}: full ({r.get('fullBecause', 'no snapshot')}); certificate links read for "
                f"{_thousands(r.get('linksRead', 0))} thing(s); this is the last full read ({r.get('lastFullRead')})."
            )
    return out


def drift_report(plan: Plan, fmt: str = "text", *, budget: int = MARKDOWN_BUDGET) -> str:
    """Drift per resource and field, to the leaf and in full: 'manifest' is the desired value, 'actual' what the
    cloud holds (+ added outside fleetctl, - missing from the actual state, ~ manifest → actual). The resources
    listed are exactly the plan's changes (the exit code's drift); managed resources kept only because pruning
    is off are noted separately. JSON fields carry `drift`: added (in the actual state only), removed (in the
    manifests only) or changed. The markdown report, when it would exceed `budget`, leaves out whole resources
    from the end of the list and says how many (no value is ever cut)."""
    orphans = _orphans(plan)
    in_sync = not plan.changes and not plan.errored  # an error, or a difference no plan can carry out: never "in sync"
    drifted = len(plan.changes) + len(plan.blocked)
    if fmt == "json":
        counts = Counter(DriftState.of(c) for c in plan.changes)
        return (
            json.dumps(
                {
                    "inSync": in_sync,
                    "complete": not plan.errors,
                    "planId": plan.plan_id,
                    "gitCommit": plan.git_commit,
                    "createdAt": plan.created_at,
                    "summary": {
                        "resources": drifted,
                        **{k: counts[k] for k in (DriftState.MISSING, DriftState.DIFFERS, DriftState.NOT_DECLARED)},
                        DriftState.BLOCKED: len(plan.blocked),
                    },
                    "drift": [
                        {
                            "address": str(c.address),
                            "kind": c.kind,
                            "state": DriftState.of(c),
                            "action": c.action.value,
                            **({"source": str(c.source)} if c.source else {}),
                            "fields": [
                                _drift_field_json(f) for f in (c.fields if c.action is not Action.CREATE else ())
                            ],
                            **({"attention": [a.to_json() for a in drift_attention(c)]} if drift_attention(c) else {}),
                        }
                        for c in plan.changes
                    ],
                    "attention": [{"address": address, **a.to_json()} for address, a in drift_items(plan)],
                    "blocked": [b.to_json() for b in plan.blocked],
                    "errors": [d.to_json() for d in plan.errors],
                    "orphaned": orphans,
                    **({"reads": plan.options["reads"]} if plan.options.get("reads") else {}),
                    # the account (and role) each AWS Target was checked in (engine/accounts.py)
                    **({"targets": plan.options["accounts"]} if plan.options.get("accounts") else {}),
                },
                indent=2,
                ensure_ascii=False,
            )
            + "\n"
        )
    if fmt == "markdown":
        return _drift_markdown(plan, orphans, budget)
    reads = "".join(line + "\n" for line in read_lines(plan))
    if in_sync:
        return (
            "In sync: the actual state matches the manifests.\n"
            + reads
            + "".join(f"note: {a} is managed by fleetctl but no longer declared (pruning is off)\n" for a in orphans)
        )
    out = read_lines(plan)
    if plan.errors:
        out.append(
            f"Drift check incomplete: {len(plan.errors)} error(s) (on stderr); the actual state was not "
            "compared in full."
        )
    if drifted:
        out.append(
            f"Drift: {drifted} resource(s) differ from the manifests"
            + (f"; {len(plan.blocked)} cannot be repaired automatically." if plan.blocked else ".")
        )
    out += attention_text(drift_items(plan), per_code=None)
    if plan.blocked:
        out += blocked_lines(plan)
    if any(DriftState.of(c) == DriftState.DIFFERS and c.fields for c in plan.changes):
        out.append(f"  ({DRIFT_LEGEND})")
    for c in plan.changes:
        state = DriftState.of(c)
        out.append(
            f"  {c.address}: {state}" + (f"  ({c.source})" if c.source else "") + flag_suffix(drift_attention(c))
        )
        if state == DriftState.DIFFERS:
            out += drift_lines(c)
    out += [f"note: {a} is managed by fleetctl but no longer declared (pruning is off)" for a in orphans]
    return "\n".join(out) + "\n"


def _drift_markdown(plan: Plan, orphans: list[str], budget: int) -> str:
    head = ["<!-- fleetctl-drift -->"]
    if not plan.changes and not plan.errored:  # an error, or a difference no plan can carry out: never "in sync"
        head.append("### fleetctl drift: in sync")
        head.append("")
        head.append(
            "The actual state matches the manifests"
            + (f" at `{plan.git_commit[:12]}`" if plan.git_commit else "")
            + f" ({plan.created_at})."
        )
        reads = read_lines(plan, markdown=True)
        return "\n".join(head + ([""] + reads if reads else []) + _orphan_lines(orphans)) + "\n"
    drifted = len(plan.changes) + len(plan.blocked)
    head += [f"### fleetctl drift: {f'{drifted} resource(s) out of sync' if drifted else 'check incomplete'}", ""]
    if plan.errors:
        head += [
            f"❌ The check ended with {len(plan.errors)} error(s); the actual state was not compared in full:",
            *[f"- {md_cell(d.render().splitlines()[0])}" for d in plan.errors],
            "",
        ]
    head += blocked_lines(plan, "markdown")
    reads = read_lines(plan, markdown=True)
    head += [*reads, ""] if reads else []
    head += [
        f"Checked {plan.created_at}"
        + (f" against `{plan.git_commit[:12]}`" if plan.git_commit else "")
        + (
            ". Re-apply the manifests (a pull request, or `fleetctl apply`) or change them to accept the actual state."
            if plan.changes
            else "."
        ),
        "",
    ]
    head += attention_markdown(drift_items(plan), "`fleetctl drift --format json`", budget=budget // 3)
    changes = list(plan.changes)
    rows: list[str | None] = [
        f"| `{c.address}`{flag_suffix(drift_attention(c))} | {_drift_state_cell(c)} | "
        + (f"`{md_cell(str(c.source))}`" if c.source else "")
        + " |"
        for c in changes
    ]
    blocks: list[list[str] | None] = [
        [f"! {c.address}" + (f"  ({c.source})" if c.source else "") + flag_suffix(drift_attention(c))]
        + drift_lines(c, "    ", markdown=True)
        if DriftState.of(c) == DriftState.DIFFERS and c.fields
        else []
        for c in changes
    ]
    tail = _orphan_lines(orphans)

    def render(left_out: int) -> str:
        table = ["| resource | drift | declared at |", "|---|---|---|", *[r for r in rows if r is not None]]
        if any(r is None for r in rows):
            table.append(f"| … | {sum(r is None for r in rows)} more resource(s) | |")
        lines = [line for block in blocks if block for line in block]
        detail: list[str] = []
        if lines:
            fence_ = fence(lines)
            detail = [
                "",
                f"Field differences ({DRIFT_LEGEND}; GitHub shows `~` as `!`):",
                "",
                fence_ + "diff",
                *lines,
                fence_,
            ]
        note = (
            []
            if not left_out
            else [
                "",
                f"_{left_out} of {len(changes)} resource(s) are left out above to fit one comment (whole "
                f"resources, from the end of the list); the full report is `fleetctl drift` (or `--format json`)._",
            ]
        )
        return "\n".join(head + table + detail + note + tail) + "\n"

    def leave_out(i: int, part: str) -> Callable[[], int]:
        def step() -> int:
            if part == "details":
                saved, blocks[i] = sum(len(line) + 1 for line in blocks[i] or []), None
            else:
                saved, rows[i] = len(rows[i] or "") + 1, None
            return saved

        return step

    # whole resources from the end of the list: their field differences first, then their row
    steps = [leave_out(i, part) for part in ("details", "rows") for i in range(len(changes) - 1, -1, -1)]
    return fit(lambda: render(sum(b is None for b in blocks)), steps, budget)


def _orphan_lines(orphans: list[str]) -> list[str]:
    if not orphans:
        return []
    listed = ", ".join(f"`{a}`" for a in orphans[:MAX_LISTED]) + (
        f" and {len(orphans) - MAX_LISTED} more (`fleetctl drift --format json` lists every one in `orphaned`)"
        if len(orphans) > MAX_LISTED
        else ""
    )
    return [
        "",
        f"ℹ️ {len(orphans)} resource(s) managed by fleetctl are no longer declared and kept because "
        f"pruning is off: {listed}",
    ]
