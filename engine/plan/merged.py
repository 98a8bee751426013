"""The merged view of per-Target plans (issue 15.4): one pull request comment for a CI matrix of plan jobs.

Each matrix job plans one Target (`fleetctl plan --target T --out plan.json`) and uploads its plan file; the
last job reads them all and renders this view: a table with one row per Target (where it acts, its status:
changes, no changes, blocked, or failed with the error its job reported) and each Target's own plan below it.
It is for reading only: the Targets' plans stay separate files, each applied on its own by its own apply job
(`fleetctl apply` of exactly that file), and nothing here can be applied as one plan; the view says so. A
Target whose plan job failed before writing a plan file (its error text given by `--failed NAME=FILE`) shows as
failed without holding the others back. Rendering only: every figure comes from the plan files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from engine.plan.model import Plan
from engine.plan.render import MARKDOWN_BUDGET, accounts_text, markdown, summary_line, text

MARKER = "<!-- fleetctl-plan -->"
READ_ONLY = (
    "This is a merged view for reading only: each Target's plan is a separate plan file that its own "
    "apply job applies exactly (`fleetctl apply` of that file); this view can never be applied as one plan."
)


@dataclass(frozen=True)
class Entry:
    """One Target's result: its plan (None when the plan job failed before writing one) or its error text."""

    target: str
    plan: Plan | None = None
    error: str = ""

    @property
    def status(self) -> str:
        if self.plan is None:
            return "failed"
        if self.target not in self.plan.options.get("targets", [self.target]):
            return "skipped"  # an optional Target whose credentials were not there (its plan's warning says so)
        if self.plan.errored:
            return "failed" if self.plan.errors else "blocked"
        return "changes" if self.plan.has_changes else "no changes"


def entries(plans: list[Plan], failed: dict[str, str]) -> list[Entry]:
    """One entry per Target, sorted by name; a plan file names its Targets in options.targets."""
    out: dict[str, Entry] = {}
    for p in plans:
        names = p.options.get("requestedTargets") or p.options.get("targets") or ["(no target)"]
        out[", ".join(names)] = Entry(", ".join(names), p)
    for name, err in failed.items():
        out.setdefault(name, Entry(name, None, err))
    return [out[k] for k in sorted(out)]


def _where(e: Entry) -> str:
    if e.plan is None:
        return ""
    return accounts_text(e.plan).removeprefix("Accounts: ").rstrip(".")


def _status_cell(e: Entry) -> str:
    icon = {"failed": "❌", "blocked": "⛔", "changes": "📝", "no changes": "✅", "skipped": "⏭️"}[e.status]
    if e.status == "skipped":
        return f"{icon} skipped: not planned (optional Target without its credentials)"
    return f"{icon} {e.status}: " + (summary_line(e.plan) if e.plan is not None else "plan job failed")


def render_markdown(items: list[Entry], commit: str = "", budget: int = MARKDOWN_BUDGET) -> str:
    failed = sum(1 for e in items if e.status == "failed")
    if not items:
        return (
            "\n".join(
                [
                    MARKER,
                    "### fleetctl plan" + (f" for `{commit[:12]}`" if commit else ""),
                    "",
                    "No Target is touched by this pull request: nothing to plan or apply.",
                ]
            )
            + "\n"
        )
    head = [
        MARKER,
        f"### fleetctl plan: {len(items)} Target(s)"
        + (f" for `{commit[:12]}`" if commit else "")
        + (f", {failed} failed" if failed else ""),
        "",
        f"_{READ_ONLY}_",
        "",
        "| Target | Acts in | Plan | Status |",
        "|---|---|---|---|",
    ]
    for e in items:
        plan_id = f"`{e.plan.plan_id}`" if e.plan is not None else "—"
        head.append(f"| `{e.target}` | {_where(e) or '—'} | {plan_id} | {_status_cell(e)} |")
    head.append("")
    share = max(2000, (budget - len("\n".join(head))) // max(1, len(items)))
    body: list[str] = []
    for e in items:
        body.append(
            f"<details{' open' if e.status not in ('no changes', 'skipped') else ''}><summary><b>{e.target}</b>: "
            f"{_status_cell(e)}</summary>"
        )
        body.append("")
        if e.plan is not None:
            inner = markdown(e.plan, budget=share).replace(MARKER + "\n", "", 1)
            body.append(inner.rstrip("\n"))
        else:
            body += ["```", e.error.rstrip("\n") or "the plan job ended without a plan file", "```"]
        body += ["", "</details>", ""]
    return "\n".join(head + body)


def render_text(items: list[Entry]) -> str:
    out = [f"fleetctl plan: {len(items)} Target(s)", READ_ONLY, ""]
    for e in items:
        out.append(f"== {e.target}: {e.status}" + (f" ({_where(e)})" if _where(e) else ""))
        out.append(text(e.plan).rstrip("\n") if e.plan is not None else e.error.rstrip("\n"))
        out.append("")
    return "\n".join(out)


def render_json(items: list[Entry]) -> str:
    return (
        json.dumps(
            {
                "mergedView": True,
                "applicable": False,
                "note": READ_ONLY,
                "targets": [
                    {
                        "target": e.target,
                        "status": e.status,
                        **(
                            {
                                "planId": e.plan.plan_id,
                                "summary": e.plan.counts(),
                                "accounts": e.plan.options.get("accounts", {}),
                            }
                            if e.plan is not None
                            else {"error": e.error}
                        ),
                    }
                    for e in items
                ],
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n"
    )


def render(items: list[Entry], fmt: str, commit: str = "") -> str:
    if fmt == "markdown":
        return render_markdown(items, commit)
    return render_json(items) if fmt == "json" else render_text(items)
