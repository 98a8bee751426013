"""The apply-duration estimate a plan states: from each kind's declared calls per action and the quotas
(engine/quotas.py), which API binds and how long an apply of these waves takes; the sentence the plan prints."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.humanize import duration as human_duration
from engine.humanize import plural, quota_rate
from engine.quotas import AWS_DEFAULT, AZURE_TIERS, Quota, plan_quotas, quota_of

CallCounter = Callable[[Any], Mapping[str, int]]


@dataclass(frozen=True)
class Estimate:
    """How long an apply of these calls takes at the quotas: per wave of concurrent changes the slowest API
    (calls / TPS), or the concurrency bound (calls × latency / workers) when that is slower; summed over waves."""

    seconds: float
    binding: str  # the API (or "concurrency") that sets the pace for the longest time
    binding_tps: float | None
    calls: dict[str, int]
    code: str | None = None
    tag: str = ""
    unknown: tuple[str, ...] = ()  # kinds/actions that declare no call table

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "seconds": round(self.seconds, 1),
            "binding": self.binding,
            "calls": self.calls,
            "mutatingCalls": sum(self.calls.values()),
        }
        if self.binding_tps is not None:
            out["bindingTps"] = self.binding_tps
        if self.code:
            out["quotaCode"] = self.code
        if self.tag:
            out["quotaTag"] = self.tag
        if self.unknown:
            out["notEstimated"] = list(self.unknown)
        return out


def estimate(
    waves: Sequence[Sequence[Any]],
    counter: Callable[[Any], Mapping[str, int] | None],
    quotas: Mapping[str, Quota],
    *,
    workers: int = 8,
    latency: float = 0.05,
    default: Quota | None = None,
) -> Estimate:
    """Apply duration at the quotas. `counter(change)` gives the change's mutating calls per API (None when
    its kind declares none); `waves` are the groups of changes apply runs concurrently."""
    total: Counter[str] = Counter()
    bound_for: defaultdict[str, float] = defaultdict(float)
    unknown: set[str] = set()
    seconds = 0.0
    for wave in waves:
        calls: Counter[str] = Counter()
        for change in wave:
            counted = counter(change)
            if counted is None:
                unknown.add(f"{getattr(change, 'kind', '?')} {getattr(getattr(change, 'action', None), 'value', '?')}")
                continue
            calls.update({k: v for k, v in counted.items() if v})
        if not calls:
            continue
        total.update(calls)
        terms = {api: n / quota_of(quotas, api, default).tps for api, n in calls.items()}
        api = max(sorted(terms), key=lambda a: terms[a])
        concurrency = sum(calls.values()) * latency / max(1, min(workers, len(wave)))
        if concurrency > terms[api]:
            bound_for["concurrency"] += concurrency
            seconds += concurrency
        else:
            bound_for[api] += terms[api]
            seconds += terms[api]
    if not bound_for:
        return Estimate(0.0, "-", None, dict(sorted(total.items())), unknown=tuple(sorted(unknown)))
    binding = max(sorted(bound_for), key=lambda a: bound_for[a])
    if binding == "concurrency":
        return Estimate(seconds, "concurrency", None, dict(sorted(total.items())), unknown=tuple(sorted(unknown)))
    q = quota_of(quotas, binding, default)
    return Estimate(seconds, binding, q.tps, dict(sorted(total.items())), q.code, q.tag, tuple(sorted(unknown)))


def duration(seconds: float) -> str:
    """11m07s, 2h46m40s, 4.2s."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    total = int(round(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


# Azure throttle classes in words, and whether buying hub units raises them (research/quotas.md §2.1, §2.3)
AZURE_CLASS_WORDS: dict[str, str] = {
    "registry": "identity registry operations",
    "query": "queries",
    "twin_read": "twin reads",
    "twin_update": "twin updates",
    "jobs": "jobs operations",
    "dps": "DPS service operations",
}


def _azure_hint(binding: str, tier: str) -> str:
    """How an operator raises an IoT Hub throttle: more units of the tier where it scales per unit."""
    if binding == "dps":
        return "a per-service DPS limit that hub units do not raise"
    per_unit = AZURE_TIERS.get(tier.upper(), {}).get(binding, (0.0, False))[1]
    if tier.upper() == "S2" and binding in ("twin_read", "twin_update"):
        per_unit = True  # max(floor, per-unit rate): units above the floor raise it
    if per_unit:
        return f"raise with more {tier} units"
    return f"fixed on {tier}; the S3 tier raises it per unit"


def estimate_line(data: Mapping[str, Any]) -> str:
    """The sentence a plan prints, from Plan.options["estimate"] (whose fields stay as they are, for machines):

    `Apply: 1,204 API calls, about 6 s at default AWS quotas (bound by AddThingToThingGroup, 100/s; raise with
    Service Quotas L-2904683A)`. Rates in plain numbers (100/min, not 1.66667 TPS), durations humanised, the
    binding API named, how to raise it (the Service Quotas code where one is known; for IoT Hub, units or tier)."""
    if not data or not data.get("mutatingCalls"):
        return ""
    took = human_duration(float(data["seconds"]))
    head = f"Apply: {plural(int(data['mutatingCalls']), 'API call')}, " + (
        took if took.startswith("under") else f"about {took}"
    )
    binding = data["binding"]
    tag = data.get("quotaTag") or ""
    if binding == "concurrency":
        text = f"{head}, bound by the changes in flight rather than a quota (raise FLEETCTL_WORKERS, default 8)"
    elif binding in AZURE_CLASS_WORDS:
        tier, units = str(data.get("hubTier") or ""), int(data.get("hubUnits") or 1)  # no tier: an older plan file
        where = (
            "the configured quotas (FLEETCTL_QUOTAS)"
            if tag == "configured"
            else (f"the IoT Hub's {tier} quotas" if tier else "the IoT Hub's quotas")
            + (f" for {units} units" if units > 1 else "")
        )
        hint = _azure_hint(binding, tier) if tier else "raise with more hub units or a higher tier"
        text = (
            f"{head} at {where} (bound by {AZURE_CLASS_WORDS[binding]}, {quota_rate(float(data['bindingTps']))}; "
            f"{hint})"
        )
    else:
        where = "the configured quotas (FLEETCTL_QUOTAS)" if tag == "configured" else "default AWS quotas"
        rate = quota_rate(float(data["bindingTps"])) + {"H": " per the 2019 AWS docs", "U": " assumed"}.get(tag, "")
        raise_it = (
            f"raise with Service Quotas {data['quotaCode']}"
            if data.get("quotaCode")
            else "raise with a Service Quotas increase request"
        )
        text = f"{head} at {where} (bound by {binding}, {rate}; {raise_it})"
    if data.get("notEstimated"):
        text += f" (not estimated: {', '.join(data['notEstimated'])})"
    for note in data.get("notes") or ():
        text += "; " + note["line"]
    return text


def apply_estimate(
    waves: Sequence[Sequence[Any]],
    env: Mapping[str, str],
    workers: int,
    note_sources: Sequence[Callable[..., Mapping[str, Any] | None]] = (),
) -> dict[str, Any]:
    """Plan.options["estimate"]: the binding quota and the apply duration, from each kind's `calls` table.
    `note_sources(waves, calls, tps)` are the providers' own notes on how they will carry the waves out (e.g. AWS
    bulk registration tasks, `AwsProvider.estimate_note`): each a mapping with the sentence it adds under `line`."""
    from engine import kinds as registry

    def counter(change: Any) -> Mapping[str, int] | None:
        try:
            calls = registry.by_qualified(change.kind).calls
        except KeyError:
            return None
        return calls(change) if calls is not None else None

    if not any(waves):
        return {}
    quotas = plan_quotas(env)
    # apply runs the creates and updates as a dependency graph, not wave after wave (engine/run/applying.py `run_dag`): a
    # thing follows its own certificate, so their quotas overlap; deletes still run one at a time at the end
    deletes = [w for w in waves if w and all(getattr(getattr(c, "action", None), "value", "") == "delete" for c in w)]
    forward = [c for w in waves if not any(w is d for d in deletes) for c in w]
    out = estimate(
        ([forward] if forward else []) + deletes, counter, quotas, workers=workers, default=AWS_DEFAULT
    ).to_json()
    if out.get("binding") in AZURE_CLASS_WORDS:
        tier, _, units = (env.get("FLEETCTL_AZURE_HUB_TIER") or "S1").partition(":")
        out["hubTier"], out["hubUnits"] = tier.strip().upper(), int(units or 1)  # the sentence's "raise with"
    notes = [
        dict(n)
        for source in note_sources
        if (n := source(waves, counter, lambda api: quota_of(quotas, api, AWS_DEFAULT).tps))
    ]
    if notes:
        out["notes"] = notes
    return out
