"""Views of a Plan: text (terminal), markdown (pull-request comment), json (machines).

Renderers only read the Plan; the planner never prints. Sensitive values are masked in the Plan itself
(fields carry "(sensitive)"), so every view honours the mask by construction, and a field marked sensitive is
shown masked whatever it holds. Every view is complete: each field change is shown to the leaf and in full
(engine/plan/fieldview.py: folded, never cut); a markdown comment that must fit GitHub's limit leaves out whole
changes in DROP_ORDER and says how many, never part of a value.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable

from engine.attention import Attention, Severity, by_severity, flags
from engine.estimate import estimate_line
from engine.model import Action, Change
from engine.plan.fieldview import field_lines, markdown_lines
from engine.plan.model import Plan

GITHUB_COMMENT_LIMIT = 65536
MAX_LISTED_ATTENTION = 50  # attention items listed per code in text and markdown (all are in the JSON)
MARKDOWN_BUDGET = 60000
ACTION_ORDER = [Action.DELETE, Action.REPLACE, Action.CREATE, Action.UPDATE]


def summary_line(plan: Plan) -> str:
    """The closing sentence. It never says the actual state matches when the plan ended in error or holds a
    difference it cannot carry out."""
    c = plan.counts()
    blocked = (
        f" {len(plan.blocked)} difference(s) cannot be planned: a person must resolve them (listed above)."
        if plan.blocked
        else ""
    )
    if not plan.changes:
        if plan.blocked:
            return "No changes can be planned." + blocked
        if plan.errors:
            return "No changes planned, but the plan ended in error: the actual state was not compared in full."
        return "No changes. The actual state matches the manifests."
    return (
        f"Plan: {c['create']} to create, {c['update']} to update, {c['replace']} to replace, "
        f"{c['delete']} to delete." + blocked
    )


def blocked_lines(plan: Plan, fmt: str = "text") -> list[str]:
    """The differences no plan can carry out (Plan.blocked), each with what differs, why fleetctl cannot repair
    it and what a person must do. Listed in full in every view (never shortened to fit): they are what a drift
    job or a reviewer must act on."""
    if not plan.blocked:
        return []
    if fmt == "markdown":
        out = [
            f"> [!CAUTION]\n> **{len(plan.blocked)} difference(s) cannot be planned**; apply cannot repair "
            "them, a person must:"
        ]
        for b in plan.blocked:
            out.append(
                f"> - `{b.address}`"
                + (f" (`{b.field}`)" if b.field else "")
                + (f" at `{b.source}`" if b.source else "")
                + f": {md_cell(b.reason)}. "
                f"**To do:** {md_cell(b.remedy)}."
            )
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


def flag_suffix(items: tuple[Attention, ...]) -> str:
    """`  [!permissions-widened] [!delete]` after a change line, or nothing."""
    return f"  {flags(items)}" if items else ""


def _severity_counts(items: list[tuple[str, Attention]]) -> str:
    counts = Counter(a.severity for _, a in items)
    return ", ".join(f"{counts[s]} {s}" for s in Severity if counts[s])


def _capped(
    items: list[tuple[str, Attention]], per_code: int | None
) -> tuple[list[tuple[str, Attention]], Counter[str]]:
    """The items listed (at most `per_code` of each code) and the count left out per code."""
    shown: list[tuple[str, Attention]] = []
    seen: Counter[str] = Counter()
    left: Counter[str] = Counter()
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
    out += [
        f'  … and {n} more [!{code}] (every item is in the JSON view\'s "attention" list)'
        for code, n in sorted(left.items())
    ]
    return out + [""]


def _code_span(text: str) -> str:
    """`text` as a markdown code span that no backtick inside can close (values are shown verbatim)."""
    ticks = "`" * (max([len(r) for r in re.findall(r"`+", text)], default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def attention_markdown(
    items: list[tuple[str, Attention]], hint: str, *, budget: int = MARKDOWN_BUDGET // 3
) -> list[str]:
    """The "Needs attention" block of a PR comment or drift issue: a `> [!CAUTION]` alert listing each item. It is
    part of the head, which shrinking never drops: when it would take more than `budget` characters, fewer items
    of each code are listed, and every code keeps its count."""
    if not items:
        return []
    for per_code in (None, MAX_LISTED_ATTENTION, 10, 3, 0):
        shown, left = _capped(items, per_code)
        lines = ["> [!CAUTION]", f"> **Needs attention: {len(items)} item(s)** ({_severity_counts(items)})"]
        lines += [
            f"> - {_SEVERITY_ICON[a.severity]} **{a.code}** `{address}`: {_code_span(a.message)}"
            for address, a in shown
        ]
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
    """ "Apply: 30 API calls, about 18 s at default AWS quotas (bound by …)" from the plan's quota estimate
    (engine/ratelimit.py)."""
    return estimate_line(plan.options.get("estimate") or {})


def scope_text(plan: Plan) -> str:
    """The note a `plan --changed-since` plan carries: it looked only at what changed."""
    scope = plan.options.get("scope")
    if not scope:
        return ""
    removed = len(scope.get("removed", []))
    return (
        f"Scope: {scope['changed']} resource(s) changed since {scope['changedSince']}"
        + (f", {scope['dependants']} dependant(s)" if scope.get("dependants") else "")
        + (f", {removed} removed" if removed else "")
        + "; nothing else was read (the drift job checks the whole fleet)."
    )


def accounts_text(plan: Plan) -> str:
    """Where each AWS Target acts (engine/accounts.py): "Accounts: aws-dev 111111111111 (role …), …"."""
    recorded = plan.options.get("accounts") or {}
    if not recorded:
        return ""
    return (
        "Accounts: "
        + ", ".join(
            f"{name} {who.get('account')}" + (f" (role {who['role']})" if who.get("role") else "")
            for name, who in sorted(recorded.items())
        )
        + "."
    )


def _counts_by_kind(plan: Plan) -> dict[str, Counter[Action]]:
    counts: dict[str, Counter[Action]] = defaultdict(Counter)
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


TABLE_ABOVE = 500  # a text plan of more changes starts with the per-kind table (every change is still listed)


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
        out.append(
            f"note: {len(plan.interrupted)} change(s) of an interrupted apply were found in the journal; "
            "this plan converges them."
        )
    if scope_text(plan):
        out.append(scope_text(plan))
    roles = any(w.get("role") for w in (plan.options.get("accounts") or {}).values())
    if roles:  # Targets reached by assumed roles: say which account each plan acts in
        out.append(accounts_text(plan))
    if plan.diagnostics or plan.interrupted or scope_text(plan) or roles:
        out.append("")
    if plan.changes and (summary or len(plan.changes) > TABLE_ABOVE):
        out += kind_table_text(plan) + [""]
    if summary:
        destructive = [c for c in plan.changes if c.action.destructive]
        for c in destructive:
            out.append(
                f"  {c.action.symbol} {c.address}" + (f"  ({c.reason})" if c.reason else "") + flag_suffix(c.attention)
            )
    for c in () if summary else plan.changes:
        reason = f"  ({c.reason})" if c.reason and c.action is not Action.DELETE else ""
        out.append(f"  {c.action.symbol} {c.address}{reason}{flag_suffix(c.attention)}")
        if detail:
            out.extend(change_lines(c))
    if plan.blocked:
        out += ([""] if out[-1] else []) + blocked_lines(plan)
    if plan.unmanaged:
        out.append("")
        out.append(
            f"{len(plan.unmanaged)} unmanaged resource(s) exist that no manifest declares; fleetctl leaves them alone:"
        )
        out += [f"  {address}" for address in plan.unmanaged]
    out.append("")
    out.append(summary_line(plan))
    if estimate_text(plan):
        out.append(estimate_text(plan) + ".")
    return "\n".join(out) + "\n"


def _kind_table(plan: Plan) -> list[str]:
    counts = _counts_by_kind(plan)
    rows = ["| kind | " + " | ".join(a.value for a in ACTION_ORDER) + " |", "|---|" + "---:|" * len(ACTION_ORDER)]
    for kind in sorted(counts):
        rows.append(f"| {kind} | " + " | ".join(str(counts[kind][a] or "") for a in ACTION_ORDER) + " |")
    total = plan.counts()
    rows.append("| **total** | " + " | ".join(f"**{total[a.value]}**" for a in ACTION_ORDER) + " |")
    return rows


ARTIFACT_PREFIX = "fleetctl-plan-"  # the PR workflow uploads the plan file as ARTIFACT_PREFIX + head commit
MAX_LISTED = 50


# When a comment must shrink to fit, whole changes are left out in this order (never part of a value): the changes
# a reviewer can read in the pull request's own diff go first, destructive ones last.
DROP_ORDER = (Action.CREATE, Action.UPDATE, Action.REPLACE, Action.DELETE)
DROP_ORDER_TEXT = (
    "creates first, then updates, replaces and deletes, each from the end of the plan, changes "
    "flagged under Needs attention last"
)


def fence(lines: list[str]) -> str:
    """A code fence longer than any backtick run inside, so no value can close the block early."""
    runs = [len(r) for line in lines for r in re.findall(r"`+", line)]
    return "`" * max(3, max(runs, default=0) + 1)


def _md_change(c: Change) -> list[str]:
    sign = {"create": "+", "delete": "-", "replace": "!", "update": "!"}[c.action.value]
    return [
        f"{sign} {c.action.value} {c.address}" + (f"  ({c.reason})" if c.reason else "") + flag_suffix(c.attention)
    ] + change_lines(c, "    ", markdown=True)


def _md_section(title: str, blocks: list[list[str] | None], *, open_: bool = False) -> list[str]:
    """One collapsible section: the listed changes in full, then how many were left out (None blocks)."""
    lines = [line for block in blocks if block is not None for line in block]
    left_out = sum(block is None for block in blocks)
    if left_out:
        lines.append(f"… and {left_out} more change(s) left out to fit the comment")
    fence_ = fence(lines)
    return [
        f"<details{' open' if open_ else ''}><summary>{title}</summary>",
        "",
        fence_ + "diff",
        *lines,
        fence_,
        "</details>",
        "",
    ]


def drop_order(changes: list[Change] | tuple[Change, ...]) -> list[int]:
    """Positions of `changes` in the order a shrinking view leaves them out (DROP_ORDER, then from the end)."""
    return sorted(
        range(len(changes)),
        key=lambda i: (
            bool(changes[i].attention),
            DROP_ORDER.index(changes[i].action) if changes[i].action in DROP_ORDER else len(DROP_ORDER),
            -i,
        ),
    )


def markdown(plan: Plan, *, artifact_hint: str | None = None, budget: int = MARKDOWN_BUDGET) -> str:
    """A PR comment: counts per action and kind first; destructive changes first and flagged; details
    collapsed per kind, every listed change in full; sensitive values masked. When the comment would exceed
    `budget`, whole changes are left out in DROP_ORDER (no value is ever cut), and the comment says how many
    and points to the plan artifact."""
    hint = artifact_hint or (
        f"the workflow artifact `{ARTIFACT_PREFIX}{plan.git_commit}` (`fleetctl show plan.json`)"
        if plan.git_commit
        else "the plan file (`fleetctl show plan.json`)"
    )
    head = [
        "<!-- fleetctl-plan -->",
        f"### fleetctl plan `{plan.plan_id}`" + (f" for `{plan.git_commit[:12]}`" if plan.git_commit else ""),
        "",
        f"**{summary_line(plan)}**",
        "",
    ]
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
        head.append(
            f"- ⚠️ {len(plan.interrupted)} change(s) of an interrupted apply were found in the journal; "
            "this plan converges them."
        )
    if plan.unmanaged:
        head.append(
            f"- ℹ️ {len(plan.unmanaged)} unmanaged resource(s) exist that no manifest declares; fleetctl "
            "leaves them alone."
        )
    footer = [
        "---",
        "_Merging this pull request applies exactly this plan (`fleetctl apply plan.json`); if the "
        "actual state changes first, apply refuses the stale plan and the pull request must be re-planned._",
    ]
    if plan.errored:
        footer = [
            "---",
            "_This plan ended in error; its plan file is marked failed and apply refuses it. Resolve "
            "the errors above and plan again._",
        ]
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
        note = (
            []
            if not left_out
            else [
                f"_{left_out} of {len(changes)} change(s) are left out above to fit one comment (whole changes, "
                f"{DROP_ORDER_TEXT}); the full plan is in {hint}._",
                "",
            ]
        )
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
        excess = len(out) - budget + 500  # the notes the shortened view adds
        while excess > 0 and done < len(steps):
            excess -= steps[done]()
            done += 1
        out = render()
    return out


def as_json(plan: Plan) -> str:
    return plan.dumps()


RENDERERS: dict[str, Callable[[Plan], str]] = {"text": text, "markdown": markdown, "json": as_json}


def md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
