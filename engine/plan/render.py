"""Views of a Plan: text (terminal), markdown (pull-request comment), json (machines).

Renderers only read the Plan; the planner never prints. Sensitive values are masked in the Plan itself
(fields carry "(sensitive)"), so every view honours the mask by construction.
"""
from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from typing import Any

from engine.model import SENSITIVE, Action, Change
from engine.plan.model import Plan

GITHUB_COMMENT_LIMIT = 65536
MARKDOWN_BUDGET = 60000
ACTION_ORDER = [Action.DELETE, Action.REPLACE, Action.CREATE, Action.UPDATE]


def _value(v: Any, limit: int = 120, sensitive: bool = False) -> str:
    if sensitive or v == SENSITIVE:
        return SENSITIVE if v is not None else "null"
    text = json.dumps(v, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary_line(plan: Plan) -> str:
    """The closing sentence. It never says the actual state matches when the plan ended in error or holds a
    difference it cannot carry out."""
    c = plan.counts()
    blocked = (f" {len(plan.blocked)} difference(s) cannot be planned: a person must resolve them (listed above)."
               if plan.blocked else "")
    if not plan.changes:
        if plan.blocked:
            return "No changes can be planned." + blocked
        if plan.errors:
            return "No changes planned, but the plan ended in error: the actual state was not compared in full."
        return "No changes. The actual state matches the manifests."
    return (f"Plan: {c['create']} to create, {c['update']} to update, {c['replace']} to replace, "
            f"{c['delete']} to delete." + blocked)


def blocked_lines(plan: Plan, fmt: str = "text") -> list[str]:
    """The differences no plan can carry out (Plan.blocked), each with what differs, why fleetctl cannot repair
    it and what a person must do. Listed in full in every view (never shortened to fit): they are what a drift
    job or a reviewer must act on."""
    if not plan.blocked:
        return []
    if fmt == "markdown":
        out = [f"> [!CAUTION]\n> **{len(plan.blocked)} difference(s) cannot be planned**; apply cannot repair "
               "them, a person must:"]
        for b in plan.blocked:
            out.append(f"> - `{b.address}`" + (f" (`{b.field}`)" if b.field else "")
                       + (f" at `{b.source}`" if b.source else "") + f": {_cell(b.reason)}. "
                       f"**To do:** {_cell(b.remedy)}.")
        return out + [""]
    out = [f"Cannot be planned: {len(plan.blocked)} difference(s) a person must resolve (apply cannot repair them):"]
    for b in plan.blocked:
        out.append(f"  ! {b.address}" + (f"  ({b.source})" if b.source else ""))
        out.extend(_change_lines(Change(b.address, b.kind, b.action, fields=b.fields)))
        out.append(f"      why: {b.reason}")
        out.append(f"      to do: {b.remedy}")
    return out


def _change_lines(c: Change, indent: str = "      ", width: int = 120) -> list[str]:
    """Field lines of a change; a field marked sensitive shows as (sensitive) whatever it holds."""
    lines = []
    for f in c.fields:
        after = _value(f.after, width, f.sensitive)
        if c.action is Action.CREATE:
            lines.append(f"{indent}{f.path}: {after}")
        else:
            lines.append(f"{indent}{f.path}: {_value(f.before, width, f.sensitive)} → {after}")
    for step in c.steps:
        lines.append(f"{indent}step: {step}")
    return lines


def estimate_text(plan: Plan) -> str:
    """"Apply bound by AttachPolicy @15 TPS: est. 11m07s …" from the plan's quota estimate (engine/ratelimit.py)."""
    from engine.ratelimit import estimate_line
    return estimate_line(plan.options.get("estimate") or {})


def scope_text(plan: Plan) -> str:
    """The note a `plan --changed-since` plan carries: it looked only at what changed."""
    scope = plan.options.get("scope")
    if not scope:
        return ""
    removed = len(scope.get("removed", []))
    return (f"Scope: {scope['changed']} resource(s) changed since {scope['changedSince']}"
            + (f", {scope['dependants']} dependant(s)" if scope.get("dependants") else "")
            + (f", {removed} removed" if removed else "")
            + "; nothing else was read (the drift job checks the whole fleet).")


def _counts_by_kind(plan: Plan) -> dict[str, Counter]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for c in plan.changes:
        counts[c.kind][c.action] += 1
    return counts


def kind_table_text(plan: Plan, indent: str = "  ") -> list[str]:
    """Changes per kind and action, aligned for a terminal."""
    counts = _counts_by_kind(plan)
    width = max([len(k) for k in counts] + [5])
    head = f"{indent}{'kind':<{width}}" + "".join(f"{a.value:>9}" for a in ACTION_ORDER)
    rows = [head]
    for kind in sorted(counts):
        rows.append(f"{indent}{kind:<{width}}" + "".join(f"{counts[kind][a] or '.':>9}" for a in ACTION_ORDER))
    total = plan.counts()
    rows.append(f"{indent}{'total':<{width}}" + "".join(f"{total[a.value]:>9}" for a in ACTION_ORDER))
    return rows


def text(plan: Plan, *, detail: bool = True, max_changes: int = 500, summary: bool = False) -> str:
    """The terminal view. `summary` (or more than `max_changes` changes) adds the per-kind table; `summary`
    lists only destructive changes, one line each (drill into any change with `fleetctl show --address`)."""
    out = [f"fleetctl plan {plan.plan_id}" + (f" (commit {plan.git_commit[:12]})" if plan.git_commit else ""), ""]
    for d in plan.diagnostics:
        out.append(d.render())
    if plan.interrupted:
        out.append(f"note: {len(plan.interrupted)} change(s) of an interrupted apply were found in the journal; "
                   "this plan converges them.")
    if scope_text(plan):
        out.append(scope_text(plan))
    if plan.diagnostics or plan.interrupted or scope_text(plan):
        out.append("")
    if plan.changes and (summary or len(plan.changes) > max_changes):
        out += kind_table_text(plan) + [""]
    if summary:
        destructive = [c for c in plan.changes if c.action.destructive]
        for c in destructive[:MAX_LISTED]:
            out.append(f"  {c.action.symbol} {c.address}" + (f"  ({c.reason})" if c.reason else ""))
        if len(destructive) > MAX_LISTED:
            out.append(f"  … and {len(destructive) - MAX_LISTED} more destructive change(s)")
        max_changes = 0
    shown = plan.changes[:max_changes]
    for c in shown:
        reason = f"  ({c.reason})" if c.reason and c.action is not Action.DELETE else ""
        out.append(f"  {c.action.symbol} {c.address}{reason}")
        if detail:
            out.extend(_change_lines(c))
    if len(plan.changes) > max_changes and not summary:
        rest = Counter((c.kind, c.action.value) for c in plan.changes[max_changes:])
        out.append(f"  … and {len(plan.changes) - max_changes} more: " +
                   ", ".join(f"{n} {a} {k}" for (k, a), n in sorted(rest.items())))
    if plan.blocked:
        out += ([""] if out[-1] else []) + blocked_lines(plan)
    if plan.unmanaged:
        out.append("")
        out.append(f"{len(plan.unmanaged)} unmanaged resource(s) exist that no manifest declares; fleetctl leaves "
                   "them alone: " + ", ".join(plan.unmanaged[:10]) + (" …" if len(plan.unmanaged) > 10 else ""))
    out.append("")
    out.append(summary_line(plan))
    if estimate_text(plan):
        out.append(estimate_text(plan) + ".")
    return "\n".join(out) + "\n"


def _kind_table(plan: Plan) -> list[str]:
    counts = _counts_by_kind(plan)
    rows = ["| kind | " + " | ".join(a.value for a in ACTION_ORDER) + " |",
            "|---|" + "---:|" * len(ACTION_ORDER)]
    for kind in sorted(counts):
        rows.append(f"| {kind} | " + " | ".join(str(counts[kind][a] or "") for a in ACTION_ORDER) + " |")
    total = plan.counts()
    rows.append("| **total** | " + " | ".join(f"**{total[a.value]}**" for a in ACTION_ORDER) + " |")
    return rows


ARTIFACT_PREFIX = "fleetctl-plan-"      # the PR workflow uploads the plan file as ARTIFACT_PREFIX + head commit
MAX_LISTED = 50


def _fence(lines: list[str]) -> str:
    """A code fence longer than any backtick run inside, so no value can close the block early."""
    runs = [len(r) for line in lines for r in re.findall(r"`+", line)]
    return "`" * max(3, max(runs, default=0) + 1)


def _md_change(c: Change, fields: int | None, width: int) -> list[str]:
    sign = {"create": "+", "delete": "-", "replace": "!", "update": "!"}[c.action.value]
    lines = [f"{sign} {c.action.value} {c.address}" + (f"  ({c.reason})" if c.reason else "")]
    if fields != 0:
        detail = _change_lines(c, "    ", width)
        shown = detail if fields is None else detail[:fields]
        lines += shown
        if len(shown) < len(detail):
            lines.append(f"    … {len(detail) - len(shown)} more line(s)")
    return lines


def _md_section(title: str, changes: list[Change], *, fields: int | None, width: int, cap: int | None,
                open_: bool = False) -> list[str]:
    lines: list[str] = []
    for c in changes[:cap]:
        lines += _md_change(c, fields, width)
    if cap is not None and len(changes) > cap:
        lines.append(f"… and {len(changes) - cap} more")
    fence = _fence(lines)
    return [f"<details{' open' if open_ else ''}><summary>{title}</summary>", "", fence + "diff", *lines, fence,
            "</details>", ""]


# detail levels tried in order until the comment fits: (field lines per change, value width, changes listed per
# kind, destructive changes listed per kind); destructive changes are the last to be cut
_LEVELS: tuple[tuple[int | None, int, int | None, int | None], ...] = (
    (None, 120, None, None), (6, 60, None, None), (0, 120, None, None), (0, 120, 200, None), (0, 120, 40, None),
    (0, 120, 10, None), (0, 120, 0, None), (0, 120, 0, 200), (0, 120, 0, MAX_LISTED))


def markdown(plan: Plan, *, artifact_hint: str | None = None, budget: int = MARKDOWN_BUDGET) -> str:
    """A PR comment: counts per action and kind first; destructive changes first and flagged; details
    collapsed per kind; sensitive values masked; shortened to fit GitHub's comment limit, with a pointer to
    the plan artifact when anything was left out."""
    hint = artifact_hint or (f"the workflow artifact `{ARTIFACT_PREFIX}{plan.git_commit}` (`fleetctl show plan.json`)"
                             if plan.git_commit else "the plan file (`fleetctl show plan.json`)")
    head = ["<!-- fleetctl-plan -->", f"### fleetctl plan `{plan.plan_id}`"
            + (f" for `{plan.git_commit[:12]}`" if plan.git_commit else ""), "", f"**{summary_line(plan)}**", ""]
    if estimate_text(plan):
        head += [f"⏱️ {estimate_text(plan)}.", ""]
    if scope_text(plan):
        head += [f"🔎 {scope_text(plan)}", ""]
    if plan.changes:
        head += _kind_table(plan) + [""]
    destructive = sorted((c for c in plan.changes if c.action.destructive),
                         key=lambda c: c.action is not Action.DELETE)      # deletes first, then replaces
    if destructive:
        head.append(f"> [!WARNING]\n> **{len(destructive)} destructive change(s)** (delete or replace):")
        head += [f"> - `{c.action.symbol}` **{c.action.value}** `{c.address}`" + (f" — {c.reason}" if c.reason else "")
                 for c in destructive[:MAX_LISTED]]
        if len(destructive) > MAX_LISTED:
            head.append(f"> - … and {len(destructive) - MAX_LISTED} more (see {hint})")
        head.append("")
    head += blocked_lines(plan, "markdown")
    for d in plan.diagnostics[:MAX_LISTED]:
        head.append(f"- {'⚠️' if d.severity.value == 'warning' else '❌'} {d.render().splitlines()[0]}")
    if len(plan.diagnostics) > MAX_LISTED:
        head.append(f"- … and {len(plan.diagnostics) - MAX_LISTED} more diagnostic(s)")
    if plan.interrupted:
        head.append(f"- ⚠️ {len(plan.interrupted)} change(s) of an interrupted apply were found in the journal; "
                    "this plan converges them.")
    if plan.unmanaged:
        head.append(f"- ℹ️ {len(plan.unmanaged)} unmanaged resource(s) exist that no manifest declares; fleetctl "
                    "leaves them alone.")
    footer = ["---", "_Merging this pull request applies exactly this plan (`fleetctl apply plan.json`); if the "
              "actual state changes first, apply refuses the stale plan and the pull request must be re-planned._"]
    if plan.errored:
        footer = ["---", "_This plan ended in error; its plan file is marked failed and apply refuses it. Resolve "
                  "the errors above and plan again._"]
    if not plan.changes:
        return "\n".join(head + footer) + "\n"
    destructive_by: dict[str, list[Change]] = defaultdict(list)
    other_by: dict[str, list[Change]] = defaultdict(list)
    for c in plan.changes:
        (destructive_by if c.action.destructive else other_by)[c.kind].append(c)
    for level, (fields, width, cap, cap_destructive) in enumerate(_LEVELS):
        body: list[str] = []
        for kind in sorted(destructive_by):
            changes = destructive_by[kind]
            body += _md_section(f"⚠️ {kind}: {len(changes)} destructive change(s)", changes, fields=fields,
                                width=width, cap=cap_destructive, open_=True)
        for kind in sorted(other_by):
            body += _md_section(f"{kind}: {len(other_by[kind])} change(s)", other_by[kind], fields=fields,
                                width=width, cap=cap)
        note = [] if level == 0 else [f"_Details were shortened to fit a comment; the full plan is in {hint}._", ""]
        text_out = "\n".join(head + [""] + body + note + footer) + "\n"
        if len(text_out) <= budget:
            return text_out
    cut = "\n".join(head)[: budget - 400]
    return cut[: cut.rfind("\n")] + f"\n\n_The plan is too large for one comment; the full plan is in {hint}._\n"


def as_json(plan: Plan) -> str:
    return plan.dumps()


RENDERERS = {"text": text, "markdown": markdown, "json": as_json}


class DriftState:
    """How a resource differs, in drift words (the plan's action read as 'what differs')."""

    MISSING = "missing"                  # declared, absent in the cloud
    DIFFERS = "differs"                  # exists, some managed fields differ
    NOT_DECLARED = "not declared"        # managed by fleetctl, no longer declared, pruning on
    BLOCKED = "blocked"                  # differs in a way no plan can repair (Plan.blocked)

    @staticmethod
    def of(c: Change) -> str:
        return {Action.CREATE: DriftState.MISSING, Action.DELETE: DriftState.NOT_DECLARED}.get(c.action,
                                                                                             DriftState.DIFFERS)


def _orphans(plan: Plan) -> list[str]:
    """Managed resources no manifest declares while pruning is off: drift the plan only warns about."""
    return sorted({d.address for d in plan.diagnostics if d.address and "no longer declared" in d.summary})


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def drift_report(plan: Plan, fmt: str = "text", *, budget: int = MARKDOWN_BUDGET) -> str:
    """Drift per resource and field: 'manifest' is the desired value, 'actual' what the cloud holds. The
    resources listed are exactly the plan's changes (the exit code's drift); managed resources kept only
    because pruning is off are noted separately."""
    orphans = _orphans(plan)
    in_sync = not plan.changes and not plan.errored   # an error, or a difference no plan can carry out: never "in sync"
    drifted = len(plan.changes) + len(plan.blocked)
    if fmt == "json":
        counts = Counter(DriftState.of(c) for c in plan.changes)
        return json.dumps({
            "inSync": in_sync, "complete": not plan.errors, "planId": plan.plan_id, "gitCommit": plan.git_commit,
            "createdAt": plan.created_at,
            "summary": {"resources": drifted, **{k: counts[k] for k in
                                                  (DriftState.MISSING, DriftState.DIFFERS, DriftState.NOT_DECLARED)},
                        DriftState.BLOCKED: len(plan.blocked)},
            "drift": [{"address": str(c.address), "kind": c.kind, "state": DriftState.of(c),
                       "action": c.action.value, **({"source": str(c.source)} if c.source else {}),
                       "fields": [{"path": f.path, "manifest": SENSITIVE if f.sensitive else f.after,
                                   "actual": SENSITIVE if f.sensitive and f.before is not None else f.before,
                                   **({"sensitive": True} if f.sensitive else {})}
                                  for f in (c.fields if c.action is not Action.CREATE else ())]}
                      for c in plan.changes],
            "blocked": [b.to_json() for b in plan.blocked],
            "errors": [d.to_json() for d in plan.errors],
            "orphaned": orphans}, indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        head = ["<!-- fleetctl-drift -->"]
        if in_sync:
            head.append("### fleetctl drift: in sync")
            head.append("")
            head.append("The actual state matches the manifests" + (f" at `{plan.git_commit[:12]}`" if plan.git_commit
                                                                      else "") + f" ({plan.created_at}).")
            return "\n".join(head + _orphan_lines(orphans)) + "\n"
        title = (f"{drifted} resource(s) out of sync" if drifted else "check incomplete")
        head += [f"### fleetctl drift: {title}", ""]
        if plan.errors:
            head += [f"❌ The check ended with {len(plan.errors)} error(s); the actual state was not compared in "
                     "full:", *[f"- {_cell(d.render().splitlines()[0])}" for d in plan.errors], ""]
        head += blocked_lines(plan, "markdown")
        head += [f"Checked {plan.created_at}" + (f" against `{plan.git_commit[:12]}`" if plan.git_commit else "")
                 + (". Re-apply the manifests (a pull request, or `fleetctl apply`) or change them to accept the "
                    "actual state." if plan.changes else "."), ""]
        if plan.changes:
            head += ["| resource | field | manifest | actual |", "|---|---|---|---|"]
        rows: list[str] = []
        for c in plan.changes:
            state = DriftState.of(c)
            if state == DriftState.MISSING:
                rows.append(f"| `{c.address}` | (whole resource) | declared | missing |")
                continue
            if state == DriftState.NOT_DECLARED:
                rows.append(f"| `{c.address}` | (whole resource) | not declared | exists (managed) |")
                continue
            for f in c.fields:
                rows.append(f"| `{c.address}` | `{_cell(f.path)}` | {_cell(_value(f.after, 60, f.sensitive))} | "
                            f"{_cell(_value(f.before, 60, f.sensitive))} |")
        tail = _orphan_lines(orphans)
        out = head + rows + tail
        while len("\n".join(out)) > budget and rows:
            rows = rows[: len(rows) // 2]
            out = head + rows + [f"| … | {len(plan.changes)} resource(s) in all: see `fleetctl drift` | | |"] + tail
        return "\n".join(out) + "\n"
    if in_sync:
        return "In sync: the actual state matches the manifests.\n" + "".join(
            f"note: {a} is managed by fleetctl but no longer declared (pruning is off)\n" for a in orphans)
    out = []
    if plan.errors:
        out.append(f"Drift check incomplete: {len(plan.errors)} error(s) (on stderr); the actual state was not "
                   "compared in full.")
    if drifted:
        out.append(f"Drift: {drifted} resource(s) differ from the manifests"
                   + (f"; {len(plan.blocked)} cannot be repaired automatically." if plan.blocked else "."))
    if plan.blocked:
        out += blocked_lines(plan)
    for c in plan.changes:
        state = DriftState.of(c)
        out.append(f"  {c.address}: {state}" + (f"  ({c.source})" if c.source else ""))
        if state == DriftState.DIFFERS:
            for f in c.fields:
                out.append(f"      {f.path}: manifest {_value(f.after, sensitive=f.sensitive)}, "
                           f"actual {_value(f.before, sensitive=f.sensitive)}")
    out += [f"note: {a} is managed by fleetctl but no longer declared (pruning is off)" for a in orphans]
    return "\n".join(out) + "\n"


def _orphan_lines(orphans: list[str]) -> list[str]:
    if not orphans:
        return []
    listed = ", ".join(f"`{a}`" for a in orphans[:MAX_LISTED]) + (" …" if len(orphans) > MAX_LISTED else "")
    return ["", f"ℹ️ {len(orphans)} resource(s) managed by fleetctl are no longer declared and kept because "
            f"pruning is off: {listed}"]
