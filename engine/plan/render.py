"""Views of a Plan: text (terminal), markdown (pull-request comment), json (machines).

Renderers only read the Plan; the planner never prints. Sensitive values are masked in the Plan itself
(fields carry "(sensitive)"), so every view honours the mask by construction, and a field marked sensitive is
shown masked whatever it holds. Every view is complete: each field change is shown to the leaf and in full
(engine/plan/fieldview.py: folded, never cut); a markdown comment that must fit GitHub's limit leaves out whole
changes in DROP_ORDER and says how many, never part of a value.
"""
from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from engine.attention import Attention, Severity, by_severity, flags
from engine.model import ADD, CHANGE, REMOVE, SENSITIVE, Action, Change
from engine.plan.fieldview import field_lines, markdown_lines
from engine.plan.model import Plan
from engine.ratelimit import estimate_line

GITHUB_COMMENT_LIMIT = 65536
MAX_LISTED_ATTENTION = 50           # attention items listed per code in text and markdown (all are in the JSON)
MARKDOWN_BUDGET = 60000
ACTION_ORDER = [Action.DELETE, Action.REPLACE, Action.CREATE, Action.UPDATE]


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
        out.extend(change_lines(Change(b.address, b.kind, b.action, fields=b.fields)))
        out.append(f"      why: {b.reason}")
        out.append(f"      to do: {b.remedy}")
    return out


# ------------------------------------------------------------------------------------- "Needs attention"
# The security-relevant items of a plan or drift report (engine/plan/attention.py computes them; these functions
# only lay them out): listed together at the top, most severe first, and flagged on each change line.
_SEVERITY_MARK = {Severity.HIGH: "!", Severity.WARNING: "!", Severity.INFO: "i"}
_SEVERITY_ICON = {Severity.HIGH: "🔴", Severity.WARNING: "🟠", Severity.INFO: "ℹ️"}


def _plan_items(plan: Plan) -> list[tuple[str, Attention]]:
    return by_severity((str(c.address), a) for c, a in plan.attention)


def _drift_items(plan: Plan) -> list[tuple[str, Attention]]:
    """The drift perspective: how the actual state differs from the manifests (`Attention.drift`)."""
    return by_severity((str(c.address), a.drift) for c, a in plan.attention if a.drift is not None)


def drift_attention(c: Change) -> tuple[Attention, ...]:
    return tuple(a.drift for a in c.attention if a.drift is not None)


def flag_suffix(items: tuple[Attention, ...]) -> str:
    """`  [!permissions-widened] [!delete]` after a change line, or nothing."""
    return f"  {flags(items)}" if items else ""


def _severity_counts(items: list[tuple[str, Attention]]) -> str:
    counts = Counter(a.severity for _, a in items)
    return ", ".join(f"{counts[s]} {s}" for s in Severity if counts[s])


def _capped(items: list[tuple[str, Attention]], per_code: int | None) -> tuple[list[tuple[str, Attention]],
                                                                                    Counter]:
    """The items listed (at most `per_code` of each code) and the count left out per code."""
    shown: list[tuple[str, Attention]] = []
    seen: Counter = Counter()
    left: Counter = Counter()
    for address, a in items:
        seen[a.code] += 1
        if per_code is None or seen[a.code] <= per_code:
            shown.append((address, a))
        else:
            left[a.code] += 1
    return shown, left


def attention_text(items: list[tuple[str, Attention]], per_code: int | None = None) -> list[str]:
    """The "Needs attention" section of a text plan or drift report: each item on one line, complete."""
    if not items:
        return []
    shown, left = _capped(items, per_code)
    out = [f"Needs attention ({len(items)}: {_severity_counts(items)}):"]
    out += [f"  {_SEVERITY_MARK[a.severity]} {a.flag} {address}: {a.message}" for address, a in shown]
    out += [f"  … and {n} more [!{code}] (every item is in the JSON view's \"attention\" list)"
            for code, n in sorted(left.items())]
    return out + [""]


def _code_span(text: str) -> str:
    """`text` as a markdown code span that no backtick inside can close (values are shown verbatim)."""
    ticks = "`" * (max([len(r) for r in re.findall(r"`+", text)], default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def attention_markdown(items: list[tuple[str, Attention]], hint: str, *,
                       budget: int = MARKDOWN_BUDGET // 3) -> list[str]:
    """The "Needs attention" block of a PR comment or drift issue: a `> [!CAUTION]` alert listing each item. It is
    part of the head, which shrinking never drops: when it would take more than `budget` characters, fewer items
    of each code are listed, and every code keeps its count."""
    if not items:
        return []
    for per_code in (None, MAX_LISTED_ATTENTION, 10, 3, 0):
        shown, left = _capped(items, per_code)
        lines = ["> [!CAUTION]", f"> **Needs attention: {len(items)} item(s)** ({_severity_counts(items)})"]
        lines += [f"> - {_SEVERITY_ICON[a.severity]} **{a.code}** `{address}`: {_code_span(a.message)}"
                  for address, a in shown]
        lines += [f"> - … and {n} more **{code}** (see {hint})" for code, n in sorted(left.items())]
        if len("\n".join(lines)) <= budget:
            break
    return lines + [""]


def change_lines(c: Change, indent: str = "      ", *, markdown: bool = False) -> list[str]:
    """Every field change of `c`, to the leaf and in full (engine/plan/fieldview.py), then its steps. A field
    marked sensitive shows as (sensitive) whatever it holds."""
    lines = []
    view = markdown_lines if markdown else field_lines
    for f in c.fields:
        lines += view(f.op, f.path, f.before, f.after, sensitive=f.sensitive, indent=indent)
    for step in c.steps:
        lines.append(f"{' ' if markdown else ''}{indent}step: {step}")
    return lines


def estimate_text(plan: Plan) -> str:
    """"Apply: 30 API calls, about 18 s at default AWS quotas (bound by …)" from the plan's quota estimate
    (engine/ratelimit.py)."""
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


def accounts_text(plan: Plan) -> str:
    """Where each AWS Target acts (engine/accounts.py): "Accounts: aws-dev 111111111111 (role …), …"."""
    recorded = plan.options.get("accounts") or {}
    if not recorded:
        return ""
    return "Accounts: " + ", ".join(f"{name} {who.get('account')}" + (f" (role {who['role']})" if who.get("role") else "")
                                    for name, who in sorted(recorded.items())) + "."


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


TABLE_ABOVE = 500     # a text plan of more changes starts with the per-kind table (every change is still listed)


def text(plan: Plan, *, detail: bool = True, summary: bool = False) -> str:
    """The terminal view: every change, every field, every attention item (a terminal or CI log has no size
    limit, so nothing is left out). A plan of more than TABLE_ABOVE changes starts with the per-kind table;
    `summary` (asked for explicitly) prints the table and only the destructive changes, one line each (drill
    into any change with `fleetctl show --address`)."""
    out = [f"fleetctl plan {plan.plan_id}" + (f" (commit {plan.git_commit[:12]})" if plan.git_commit else ""), ""]
    out += attention_text(_plan_items(plan), per_code=None)
    for d in plan.diagnostics:
        out.append(d.render())
    if plan.interrupted:
        out.append(f"note: {len(plan.interrupted)} change(s) of an interrupted apply were found in the journal; "
                   "this plan converges them.")
    if scope_text(plan):
        out.append(scope_text(plan))
    roles = any(w.get("role") for w in (plan.options.get("accounts") or {}).values())
    if roles:       # Targets reached by assumed roles: say which account each plan acts in
        out.append(accounts_text(plan))
    if plan.diagnostics or plan.interrupted or scope_text(plan) or roles:
        out.append("")
    if plan.changes and (summary or len(plan.changes) > TABLE_ABOVE):
        out += kind_table_text(plan) + [""]
    if summary:
        destructive = [c for c in plan.changes if c.action.destructive]
        for c in destructive:
            out.append(f"  {c.action.symbol} {c.address}" + (f"  ({c.reason})" if c.reason else "")
                       + flag_suffix(c.attention))
    for c in (() if summary else plan.changes):
        reason = f"  ({c.reason})" if c.reason and c.action is not Action.DELETE else ""
        out.append(f"  {c.action.symbol} {c.address}{reason}{flag_suffix(c.attention)}")
        if detail:
            out.extend(change_lines(c))
    if plan.blocked:
        out += ([""] if out[-1] else []) + blocked_lines(plan)
    if plan.unmanaged:
        out.append("")
        out.append(f"{len(plan.unmanaged)} unmanaged resource(s) exist that no manifest declares; fleetctl leaves "
                   "them alone:")
        out += [f"  {address}" for address in plan.unmanaged]
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


# When a comment must shrink to fit, whole changes are left out in this order (never part of a value): the changes
# a reviewer can read in the pull request's own diff go first, destructive ones last.
DROP_ORDER = (Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE)
DROP_ORDER_TEXT = ("creates first, then updates, replaces and deletes, each from the end of the plan, changes "
                   "flagged under Needs attention last")


def fence(lines: list[str]) -> str:
    """A code fence longer than any backtick run inside, so no value can close the block early."""
    runs = [len(r) for line in lines for r in re.findall(r"`+", line)]
    return "`" * max(3, max(runs, default=0) + 1)


def _md_change(c: Change) -> list[str]:
    sign = {"create": "+", "delete": "-", "replace": "!", "update": "!"}[c.action.value]
    return [f"{sign} {c.action.value} {c.address}" + (f"  ({c.reason})" if c.reason else "")
            + flag_suffix(c.attention)] + change_lines(c, "    ", markdown=True)


def _md_section(title: str, blocks: list[list[str] | None], *, open_: bool = False) -> list[str]:
    """One collapsible section: the listed changes in full, then how many were left out (None blocks)."""
    lines = [line for block in blocks if block is not None for line in block]
    left_out = sum(block is None for block in blocks)
    if left_out:
        lines.append(f"… and {left_out} more change(s) left out to fit the comment")
    fence_ = fence(lines)
    return [f"<details{' open' if open_ else ''}><summary>{title}</summary>", "", fence_ + "diff", *lines, fence_,
            "</details>", ""]


def drop_order(changes: list[Change] | tuple[Change, ...]) -> list[int]:
    """Positions of `changes` in the order a shrinking view leaves them out (DROP_ORDER, then from the end)."""
    return sorted(range(len(changes)), key=lambda i: (bool(changes[i].attention),
                                                      DROP_ORDER.index(changes[i].action)
                                                      if changes[i].action in DROP_ORDER else len(DROP_ORDER), -i))


def markdown(plan: Plan, *, artifact_hint: str | None = None, budget: int = MARKDOWN_BUDGET) -> str:
    """A PR comment: counts per action and kind first; destructive changes first and flagged; details
    collapsed per kind, every listed change in full; sensitive values masked. When the comment would exceed
    `budget`, whole changes are left out in DROP_ORDER (no value is ever cut), and the comment says how many
    and points to the plan artifact."""
    hint = artifact_hint or (f"the workflow artifact `{ARTIFACT_PREFIX}{plan.git_commit}` (`fleetctl show plan.json`)"
                             if plan.git_commit else "the plan file (`fleetctl show plan.json`)")
    head = ["<!-- fleetctl-plan -->", f"### fleetctl plan `{plan.plan_id}`"
            + (f" for `{plan.git_commit[:12]}`" if plan.git_commit else ""), "", f"**{summary_line(plan)}**", ""]
    head += attention_markdown(_plan_items(plan), hint, budget=budget // 3)
    if estimate_text(plan):
        head += [f"⏱️ {estimate_text(plan)}.", ""]
    if scope_text(plan):
        head += [f"🔎 {scope_text(plan)}", ""]
    if accounts_text(plan):
        head += [f"☁️ {accounts_text(plan)}", ""]
    if plan.changes:
        head += _kind_table(plan) + [""]
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
    changes = list(plan.changes)
    blocks: list[list[str] | None] = [_md_change(c) for c in changes]
    destructive_by: dict[str, list[int]] = defaultdict(list)
    other_by: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(changes):
        (destructive_by if c.action.destructive else other_by)[c.kind].append(i)

    def render(left_out: int) -> str:
        body: list[str] = []
        for kind in sorted(destructive_by):
            idx = destructive_by[kind]
            body += _md_section(f"⚠️ {kind}: {len(idx)} destructive change(s)", [blocks[i] for i in idx], open_=True)
        for kind in sorted(other_by):
            idx = other_by[kind]
            body += _md_section(f"{kind}: {len(idx)} change(s)", [blocks[i] for i in idx])
        note = [] if not left_out else [
            f"_{left_out} of {len(changes)} change(s) are left out above to fit one comment (whole changes, "
            f"{DROP_ORDER_TEXT}); the full plan is in {hint}._", ""]
        return "\n".join(head + [""] + body + note + footer) + "\n"

    def leave_out(i: int) -> Callable[[], int]:
        def step() -> int:
            saved = sum(len(line) + 1 for line in blocks[i] or [])
            blocks[i] = None
            return saved
        return step

    return fit(lambda: render(sum(b is None for b in blocks)), [leave_out(i) for i in drop_order(changes)], budget)


def fit(render: Callable[[], str], steps: list[Callable[[], int]], budget: int) -> str:
    """render() after as few of `steps` as make it fit `budget` (each step leaves something whole out and says
    how many characters it saved); taken in batches, so a 100k-change view renders a handful of times."""
    out = render()
    done = 0
    while len(out) > budget and done < len(steps):
        excess = len(out) - budget + 500           # the notes the shortened view adds
        while excess > 0 and done < len(steps):
            excess -= steps[done]()
            done += 1
        out = render()
    return out


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


# Drift reads a change the other way round from a plan: the manifests are the reference and the actual state
# is what moved, as Terraform's "changed outside of Terraform". A field the plan would add is missing from the
# actual state (-), one the plan would remove was added outside fleetctl (+).
DRIFT_LEGEND = "+ only in the actual state (added outside fleetctl), - only in the manifests, ~ manifest → actual"
_DRIFT_OP = {ADD: REMOVE, REMOVE: ADD, CHANGE: CHANGE}
_DRIFT_WORD = {ADD: "added", REMOVE: "removed", CHANGE: "changed"}


def drift_lines(c: Change, indent: str = "      ", *, markdown: bool = False) -> list[str]:
    """The field differences of a drifted resource, in drift direction (manifest → actual), in full."""
    view = markdown_lines if markdown else field_lines
    return [line for f in c.fields for line in view(_DRIFT_OP[f.op], f.path, f.after, f.before,
                                                    sensitive=f.sensitive, indent=indent)]


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
                + (f"; {_thousands(r['ignoredEvents'])} of them name nothing fleetctl reads" if r.get("ignoredEvents") else "")
                + f"; certificate links re-read for {_thousands(r.get('linksRead', 0))} thing(s), taken from the "
                f"snapshot for {_thousands(r.get('linksKept', 0))}; every list read ran in full; last full read "
                f"{r.get('lastFullRead')}.")
            out += [f"  every thing's links were re-read because {why}" for why in every]
        else:
            out.append(f"Read of {target}: full ({r.get('fullBecause', 'no snapshot')}); certificate links read for "
                       f"{_thousands(r.get('linksRead', 0))} thing(s); this is the last full read ({r.get('lastFullRead')}).")
    return out


def drift_report(plan: Plan, fmt: str = "text", *, budget: int = MARKDOWN_BUDGET) -> str:
    """Drift per resource and field, to the leaf and in full: 'manifest' is the desired value, 'actual' what the
    cloud holds (+ added outside fleetctl, - missing from the actual state, ~ manifest → actual). The resources
    listed are exactly the plan's changes (the exit code's drift); managed resources kept only because pruning
    is off are noted separately. JSON fields carry `drift`: added (in the actual state only), removed (in the
    manifests only) or changed. The markdown report, when it would exceed `budget`, leaves out whole resources
    from the end of the list and says how many (no value is ever cut)."""
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
                       "fields": [_drift_field_json(f) for f in (c.fields if c.action is not Action.CREATE else ())],
                       **({"attention": [a.to_json() for a in drift_attention(c)]} if drift_attention(c) else {})}
                      for c in plan.changes],
            "attention": [{"address": address, **a.to_json()} for address, a in _drift_items(plan)],
            "blocked": [b.to_json() for b in plan.blocked],
            "errors": [d.to_json() for d in plan.errors],
            "orphaned": orphans,
            **({"reads": plan.options["reads"]} if plan.options.get("reads") else {}),
            # the account (and role) each AWS Target was checked in (engine/accounts.py)
            **({"targets": plan.options["accounts"]} if plan.options.get("accounts") else {})},
            indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        return _drift_markdown(plan, orphans, budget)
    reads = "".join(line + "\n" for line in read_lines(plan))
    if in_sync:
        return "In sync: the actual state matches the manifests.\n" + reads + "".join(
            f"note: {a} is managed by fleetctl but no longer declared (pruning is off)\n" for a in orphans)
    out = read_lines(plan)
    if plan.errors:
        out.append(f"Drift check incomplete: {len(plan.errors)} error(s) (on stderr); the actual state was not "
                   "compared in full.")
    if drifted:
        out.append(f"Drift: {drifted} resource(s) differ from the manifests"
                   + (f"; {len(plan.blocked)} cannot be repaired automatically." if plan.blocked else "."))
    out += attention_text(_drift_items(plan), per_code=None)
    if plan.blocked:
        out += blocked_lines(plan)
    if any(DriftState.of(c) == DriftState.DIFFERS and c.fields for c in plan.changes):
        out.append(f"  ({DRIFT_LEGEND})")
    for c in plan.changes:
        state = DriftState.of(c)
        out.append(f"  {c.address}: {state}" + (f"  ({c.source})" if c.source else "")
                   + flag_suffix(drift_attention(c)))
        if state == DriftState.DIFFERS:
            out += drift_lines(c)
    out += [f"note: {a} is managed by fleetctl but no longer declared (pruning is off)" for a in orphans]
    return "\n".join(out) + "\n"


def _drift_markdown(plan: Plan, orphans: list[str], budget: int) -> str:
    head = ["<!-- fleetctl-drift -->"]
    if not plan.changes and not plan.errored:      # an error, or a difference no plan can carry out: never "in sync"
        head.append("### fleetctl drift: in sync")
        head.append("")
        head.append("The actual state matches the manifests" + (f" at `{plan.git_commit[:12]}`" if plan.git_commit
                                                                  else "") + f" ({plan.created_at}).")
        reads = read_lines(plan, markdown=True)
        return "\n".join(head + ([""] + reads if reads else []) + _orphan_lines(orphans)) + "\n"
    drifted = len(plan.changes) + len(plan.blocked)
    head += [f"### fleetctl drift: {f'{drifted} resource(s) out of sync' if drifted else 'check incomplete'}", ""]
    if plan.errors:
        head += [f"❌ The check ended with {len(plan.errors)} error(s); the actual state was not compared in "
                 "full:", *[f"- {_cell(d.render().splitlines()[0])}" for d in plan.errors], ""]
    head += blocked_lines(plan, "markdown")
    reads = read_lines(plan, markdown=True)
    head += [*reads, ""] if reads else []
    head += [f"Checked {plan.created_at}" + (f" against `{plan.git_commit[:12]}`" if plan.git_commit else "")
             + (". Re-apply the manifests (a pull request, or `fleetctl apply`) or change them to accept the "
                "actual state." if plan.changes else "."), ""]
    head += attention_markdown(_drift_items(plan), "`fleetctl drift --format json`", budget=budget // 3)
    changes = list(plan.changes)
    rows: list[str | None] = [f"| `{c.address}`{flag_suffix(drift_attention(c))} | {_drift_state_cell(c)} | "
                              + (f"`{_cell(str(c.source))}`" if c.source else "") + " |" for c in changes]
    blocks: list[list[str] | None] = [
        [f"! {c.address}" + (f"  ({c.source})" if c.source else "") + flag_suffix(drift_attention(c))]
        + drift_lines(c, "    ", markdown=True)
        if DriftState.of(c) == DriftState.DIFFERS and c.fields else [] for c in changes]
    tail = _orphan_lines(orphans)

    def render(left_out: int) -> str:
        table = ["| resource | drift | declared at |", "|---|---|---|", *[r for r in rows if r is not None]]
        if any(r is None for r in rows):
            table.append(f"| … | {sum(r is None for r in rows)} more resource(s) | |")
        lines = [line for block in blocks if block for line in block]
        detail: list[str] = []
        if lines:
            fence_ = fence(lines)
            detail = ["", f"Field differences ({DRIFT_LEGEND}; GitHub shows `~` as `!`):", "",
                      fence_ + "diff", *lines, fence_]
        note = [] if not left_out else [
            "", f"_{left_out} of {len(changes)} resource(s) are left out above to fit one comment (whole "
                f"resources, from the end of the list); the full report is `fleetctl drift` (or `--format json`)._"]
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
        if len(orphans) > MAX_LISTED else "")
    return ["", f"ℹ️ {len(orphans)} resource(s) managed by fleetctl are no longer declared and kept because "
            f"pruning is off: {listed}"]
