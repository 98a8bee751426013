"""Views of a Plan: text (terminal), markdown (pull-request comment), json (machines).

Renderers only read the Plan; the planner never prints. Sensitive values are masked in the Plan itself
(fields carry "(sensitive)"), so every view honours the mask by construction.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

from engine.model import Action, Change
from engine.plan.model import Plan

GITHUB_COMMENT_LIMIT = 65536
MARKDOWN_BUDGET = 60000
ACTION_ORDER = [Action.DELETE, Action.REPLACE, Action.CREATE, Action.UPDATE]


def _value(v: Any, limit: int = 120) -> str:
    text = v if isinstance(v, str) and v == "(sensitive)" else json.dumps(v, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary_line(plan: Plan) -> str:
    c = plan.counts()
    if not plan.changes:
        return "No changes. The actual state matches the manifests."
    return (f"Plan: {c['create']} to create, {c['update']} to update, {c['replace']} to replace, "
            f"{c['delete']} to delete.")


def _change_lines(c: Change, indent: str = "      ") -> list[str]:
    lines = []
    for f in c.fields:
        if c.action is Action.CREATE:
            lines.append(f"{indent}{f.path}: {_value(f.after)}")
        else:
            lines.append(f"{indent}{f.path}: {_value(f.before)} → {_value(f.after)}")
    for step in c.steps:
        lines.append(f"{indent}step: {step}")
    return lines


def text(plan: Plan, *, detail: bool = True, max_changes: int = 500) -> str:
    out = [f"fleetctl plan {plan.plan_id}" + (f" (commit {plan.git_commit[:12]})" if plan.git_commit else ""), ""]
    for d in plan.diagnostics:
        out.append(d.render())
    if plan.interrupted:
        out.append(f"note: {len(plan.interrupted)} change(s) of an interrupted apply were found in the journal; "
                   "this plan converges them.")
    if plan.diagnostics or plan.interrupted:
        out.append("")
    shown = plan.changes[:max_changes]
    for c in shown:
        reason = f"  ({c.reason})" if c.reason and c.action is not Action.DELETE else ""
        out.append(f"  {c.action.symbol} {c.address}{reason}")
        if detail:
            out.extend(_change_lines(c))
    if len(plan.changes) > max_changes:
        rest = Counter((c.kind, c.action.value) for c in plan.changes[max_changes:])
        out.append(f"  … and {len(plan.changes) - max_changes} more: " +
                   ", ".join(f"{n} {a} {k}" for (k, a), n in sorted(rest.items())))
    if plan.unmanaged:
        out.append("")
        out.append(f"{len(plan.unmanaged)} unmanaged resource(s) exist that no manifest declares; fleetctl leaves "
                   "them alone: " + ", ".join(plan.unmanaged[:10]) + (" …" if len(plan.unmanaged) > 10 else ""))
    out.append("")
    out.append(summary_line(plan))
    return "\n".join(out) + "\n"


def _kind_table(plan: Plan) -> list[str]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for c in plan.changes:
        counts[c.kind][c.action] += 1
    rows = ["| kind | " + " | ".join(a.value for a in ACTION_ORDER) + " |",
            "|---|" + "---:|" * len(ACTION_ORDER)]
    for kind in sorted(counts):
        rows.append(f"| {kind} | " + " | ".join(str(counts[kind][a] or "") for a in ACTION_ORDER) + " |")
    return rows


def markdown(plan: Plan, *, artifact_hint: str = "the plan artifact") -> str:
    """A PR comment: counts first, destructive changes first and flagged, details collapsed per kind."""
    head = ["<!-- fleetctl-plan -->", f"### fleetctl plan `{plan.plan_id}`"
            + (f" for `{plan.git_commit[:12]}`" if plan.git_commit else ""), "", f"**{summary_line(plan)}**", ""]
    if plan.changes:
        head += _kind_table(plan) + [""]
    destructive = [c for c in plan.changes if c.action.destructive]
    if destructive:
        head.append(f"> [!WARNING]\n> {len(destructive)} destructive change(s):")
        head += [f"> - `{c.action.symbol}` **{c.action.value}** `{c.address}`" + (f" — {c.reason}" if c.reason else "")
                 for c in destructive[:50]]
        head.append("")
    for d in plan.diagnostics:
        head.append(f"- {'⚠️' if d.severity.value == 'warning' else '❌'} {d.render().splitlines()[0]}")
    body: list[str] = []
    by_kind: dict[str, list[Change]] = defaultdict(list)
    for c in sorted(plan.changes, key=lambda c: (not c.action.destructive, c.kind)):
        by_kind[c.kind].append(c)
    for kind, changes in by_kind.items():
        body.append(f"<details><summary>{kind}: {len(changes)} change(s)</summary>\n\n```diff")
        for c in changes:
            sign = {"create": "+", "delete": "-", "replace": "!", "update": "!"}[c.action.value]
            body.append(f"{sign} {c.action.value} {c.address}" + (f"  ({c.reason})" if c.reason else ""))
            body.extend(_change_lines(c, "    "))
        body.append("```\n</details>\n")
    text_out = "\n".join(head + [""] + body)
    if len(text_out) > MARKDOWN_BUDGET:
        cut = text_out[:MARKDOWN_BUDGET]
        cut = cut[: cut.rfind("\n")]
        if cut.count("```") % 2:
            cut += "\n```"
        if cut.count("<details>") > cut.count("</details>"):
            cut += "\n</details>"
        text_out = cut + f"\n\n_The plan is too large for one comment; the full plan is in {artifact_hint}._\n"
    return text_out


def as_json(plan: Plan) -> str:
    return plan.dumps()


RENDERERS = {"text": text, "markdown": markdown, "json": as_json}


def drift_report(plan: Plan, fmt: str = "text") -> str:
    """Drift per resource and field (the plan read as 'what differs', not 'what will change')."""
    if fmt == "json":
        return json.dumps({"inSync": not plan.changes, "planId": plan.plan_id, "gitCommit": plan.git_commit,
                           "drift": [{"address": str(c.address), "kind": c.kind, "action": c.action.value,
                                      "fields": [f.to_json() for f in c.fields]} for c in plan.changes]},
                          indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        if not plan.changes:
            return "### fleetctl drift: in sync\n"
        rows = ["<!-- fleetctl-drift -->", f"### fleetctl drift: {len(plan.changes)} resource(s) out of sync", "",
                "| resource | field | manifest | actual |", "|---|---|---|---|"]
        for c in plan.changes:
            if c.action is Action.CREATE:
                rows.append(f"| `{c.address}` | (whole resource) | declared | missing |")
            elif c.action is Action.DELETE:
                rows.append(f"| `{c.address}` | (whole resource) | not declared | exists (managed) |")
            for f in c.fields if c.action not in (Action.CREATE,) else ():
                rows.append(f"| `{c.address}` | `{f.path}` | {_value(f.after, 60)} | {_value(f.before, 60)} |")
        return "\n".join(rows) + "\n"
    if not plan.changes:
        return "In sync: the actual state matches the manifests.\n"
    out = [f"Drift: {len(plan.changes)} resource(s) differ from the manifests."]
    for c in plan.changes:
        state = {Action.CREATE: "missing", Action.DELETE: "not declared"}.get(c.action, "differs")
        out.append(f"  {c.address}: {state}")
        if c.action not in (Action.CREATE,):
            for f in c.fields:
                out.append(f"      {f.path}: manifest {_value(f.after)}, actual {_value(f.before)}")
    return "\n".join(out) + "\n"
