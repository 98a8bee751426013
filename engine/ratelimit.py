"""Quota-aware pacing: one adaptive token bucket per cloud API, seeded with the default quotas.

Why: AWS IoT and Azure IoT Hub throttle per API (per account+region, per hub unit). A fleet engine that fires
requests as fast as its threads allow spends its time in 429s and back-offs, and a 100,000-device apply takes
as long as the slowest quota anyway (research/quotas.md §8). So every request first takes a token from its
API's bucket: the engine runs at the quota, not above it, and the plan can say which quota binds and how long
an apply will take.

- `AWS_IOT_QUOTAS` / `azure_hub_quotas(tier, units)`: the default quotas of research/quotas.md §1.1 and §2.1,
  each tagged with its provenance (V verified current default, H 2019 guide only, U assumed) and, for AWS, the
  Service Quotas code an operator asks to raise. Raised quotas are configuration, not code:
  `FLEETCTL_QUOTAS="AttachPolicy=100,CreateThing=200"` (see `overrides_from_env`).
- `RateLimiter`: bounded concurrency (a semaphore on requests in flight) plus one `AdaptiveBucket` per API.
  AIMD: every success adds `increase` × the seeded rate per second of traffic (additive, never above the
  ceiling: the seeded quota unless probing is on); a `Throttled` answer multiplies the rate by `decrease`, at
  most once per `cooldown` (concurrent requests in flight when the quota was hit all come back throttled:
  one event, not many). Retrying is not done here: engine/retry.py retries throttling and transient errors only.
- `guard(api)`: the generic hook any client wraps around one wire call (AWS: AwsClient; Azure: `AzureProvider.call`,
  mapping each operation to its throttle class with `azure_operation_class`; import/export job requests are `jobs`,
  blob requests `storage`, which no hub quota covers).
- `estimate(...)`: the apply-duration estimate a plan states, from each kind's declared calls per action.

The clock and the sleep are injected, so tests drive the buckets with a fake clock.
"""
from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from engine.errors import Throttled
from engine.humanize import duration as human_duration
from engine.humanize import plural, quota_rate


@dataclass(frozen=True)
class Quota:
    """A default request rate. `tag`: V (verified current default), H (2019 guide only), U (assumed)."""

    api: str
    tps: float
    tag: str = "V"
    code: str | None = None          # AWS Service Quotas code (request an increase with it)
    source: str = ""

    def describe(self) -> str:
        """`CreateThing, 100/s`: the API and its rate in plain numbers (engine/humanize.py)."""
        return f"{self.api}, {quota_rate(self.tps)}"


_S1 = "Service Quotas dump (quotas.md S1)"
_S2 = "Thingpress API-limit page (quotas.md S2)"
_H = "2019 AWS IoT developer guide (quotas.md S3)"
_S4 = "quota-code catalog of the `iot` service (quotas.md S4)"   # codes only; the rates are from S2/S3


def _table(rows: Iterable[tuple[str, float, str, str | None, str]]) -> dict[str, Quota]:
    return {api: Quota(api, tps, tag, code, source) for api, tps, tag, code, source in rows}


# research/quotas.md §1.1; codes and the thing-group/type/tag rows from the Service Quotas dump S1.
AWS_IOT_QUOTAS: dict[str, Quota] = _table([
    ("CreateThing", 100, "V", "L-64CBACAC", _S1), ("DescribeThing", 350, "V", "L-0EF0F5EE", _S1),
    ("ListThings", 10, "V", "L-57AAC135", _S1), ("UpdateThing", 100, "V", "L-211F680E", _S1),
    ("DeleteThing", 100, "V", "L-889800F7", _S1), ("AttachThingPrincipal", 100, "V", "L-F64D1AA6", _S1),
    ("DetachThingPrincipal", 100, "V", "L-B5EE4A16", _S1), ("ListThingPrincipals", 10, "V", "L-FC3EF4D9", _S1),
    ("ListPrincipalThings", 10, "V", "L-C481616A", _S1), ("AddThingToThingGroup", 100, "V", "L-2904683A", _S1),
    ("RemoveThingFromThingGroup", 100, "V", "L-2A81A394", _S1),
    ("ListThingGroupsForThing", 100, "V", "L-75F129AD", _S1),
    ("ListThingsInThingGroup", 25, "V", "L-D33FD5F9", _S1), ("ListThingGroups", 10, "V", "L-1E5260D6", _S1),
    ("DescribeThingGroup", 100, "V", "L-52E1E197", _S1), ("CreateThingGroup", 25, "V", "L-512F449C", _S1),
    ("UpdateThingGroup", 15, "V", "L-5D84F9FE", _S1), ("DeleteThingGroup", 15, "V", "L-FCAB1AF4", _S1),
    ("ListThingTypes", 10, "V", "L-F9EBF527", _S1), ("DescribeThingType", 100, "V", "L-DDCF8E97", _S1),
    ("CreateThingType", 15, "V", "L-8650816F", _S1), ("DeprecateThingType", 15, "V", "L-7F1DBFAE", _S1),
    ("DeleteThingType", 15, "V", "L-CFBDB489", _S1), ("ListTagsForResource", 10, "V", "L-D127B7BE", _S1),
    ("TagResource", 10, "V", "L-06E76376", _S1), ("UntagResource", 10, "V", "L-8996ACA8", _S1),
    ("AttachPolicy", 15, "V", "L-CA7D4E3E", _S2), ("GetPolicy", 10, "V", "L-5CE9072D", _S2 + "; code " + _S4),
    ("RegisterCertificateWithoutCA", 10, "V", "L-4671C7C8", _S2 + "; code " + _S4),
    ("DescribeCertificate", 10, "V", "L-FC864907", _S2 + "; code " + _S4),
    ("CreatePolicy", 10, "H", "L-1B2EEF52", _H + "; code " + _S4), ("CreatePolicyVersion", 10, "H", "L-BD4A365E", _H),
    ("ListAttachedPolicies", 15, "H", None, _H), ("ListTargetsForPolicy", 10, "H", None, _H),
    ("RegisterCertificate", 10, "H", "L-8C0011A3", _H + "; code " + _S4),
    ("UpdateCertificate", 10, "H", "L-77B523DC", _H + "; code " + _S4),
    ("DeleteCertificate", 10, "H", "L-EEB8F0B1", _H + "; code " + _S4), ("RegisterThing", 10, "H", None, _H),
    ("SearchIndex", 15, "H", None, _H), ("ListCertificates", 10, "H", None, "quotas.md §8.1 [H]"),
    ("CreateKeysAndCertificate", 15, "H", "L-40B55430", "2019 guide: certificates registered per second [H]"),
    ("DetachPolicy", 15, "U", "L-EC88D510", "rate assumed equal to AttachPolicy; code " + _S4),
    ("AttachPrincipalPolicy", 15, "U", None, "deprecated form of AttachPolicy: assumed to share its 15 TPS"),
    # CloudTrail, for incremental drift (engine/providers/aws/trail.py): "The rate of lookup requests is limited to
    # two per second, per account, per Region" (API_LookupEvents.html, CloudTrail API reference)
    ("LookupEvents", 2, "V", None, "CloudTrail API reference, LookupEvents"),
])
# The access and grouping kinds (engine/providers/aws/kinds_access.py). No published rate was found for any of these
# APIs: the AWS IoT Core endpoints-and-quotas page, the API reference pages of each API and the sources of
# research/quotas.md (S1-S4) list none (searched 2026-12-03). Tagged U with the control-plane default assumed, so
# the plan says "assumed"; a raised or measured value is configuration (FLEETCTL_QUOTAS), not code.
_NONE_PUBLISHED = "no published rate (IoT Core quotas page, API reference, quotas.md S1-S4): 10 TPS assumed"
# IAM (ServiceRole) publishes no per-API request rates at all (IAM quotas are object counts); IAM is global, its
# requests count per account, not per region.
_IAM_NONE = "IAM publishes no per-API request rate (its quotas are object counts): 10 TPS assumed"
AWS_IOT_QUOTAS.update(_table([
    *((api, 10, "U", None, _NONE_PUBLISHED) for api in (
        "CreateRoleAlias", "UpdateRoleAlias", "DeleteRoleAlias", "DescribeRoleAlias", "ListRoleAliases",
        "CreateBillingGroup", "UpdateBillingGroup", "DeleteBillingGroup", "DescribeBillingGroup", "ListBillingGroups",
        "AddThingToBillingGroup", "RemoveThingFromBillingGroup", "ListThingsInBillingGroup",
        "CreateDynamicThingGroup", "UpdateDynamicThingGroup", "DeleteDynamicThingGroup")),
    *((api, 10, "U", None, _IAM_NONE) for api in (
        "CreateRole", "UpdateRole", "UpdateAssumeRolePolicy", "PutRolePolicy", "DeleteRolePolicy", "DetachRolePolicy",
        "DeleteRole", "TagRole", "GetRole", "ListRoles", "ListRolePolicies", "GetRolePolicy",
        "ListAttachedRolePolicies", "ListRoleTags")),
]))
AWS_DEFAULT = Quota("*", 10, "U", None, "no value found: 10 TPS, the usual default of IoT control-plane APIs")
# issue 17 (b): the APIs of the account settings, audit, authorizers, domains and destinations. No published rate
# was found for any of them (the iot-core.html quota page and the API references searched; research/quotas.md has
# none): each is listed with AWS_DEFAULT's assumed rate and says so, so the estimate names the API and its
# provenance instead of silently falling back. Replace a row when a Service Quotas dump shows the value.
_NO_VALUE = "no published value found (iot-core.html, API reference): the 10 TPS default of IoT control-plane APIs assumed"
AWS_IOT_QUOTAS.update(_table((api, AWS_DEFAULT.tps, "U", None, _NO_VALUE) for api in (
    "UpdateIndexingConfiguration", "GetIndexingConfiguration", "SetV2LoggingOptions", "GetV2LoggingOptions",
    "SetV2LoggingLevel", "ListV2LoggingLevels", "DeleteV2LoggingLevel", "UpdateEventConfigurations",
    "DescribeEventConfigurations", "UpdateAccountAuditConfiguration", "DescribeAccountAuditConfiguration",
    "CreateScheduledAudit", "UpdateScheduledAudit", "DeleteScheduledAudit", "DescribeScheduledAudit",
    "ListScheduledAudits", "CreateAuthorizer", "UpdateAuthorizer", "DeleteAuthorizer", "DescribeAuthorizer",
    "ListAuthorizers", "CreateDomainConfiguration", "UpdateDomainConfiguration", "DeleteDomainConfiguration",
    "DescribeDomainConfiguration", "ListDomainConfigurations", "CreateTopicRuleDestination",
    "UpdateTopicRuleDestination", "DeleteTopicRuleDestination", "GetTopicRuleDestination",
    "ListTopicRuleDestinations")))

# research/quotas.md §2.1 (per hub; "unit" = purchased unit) and §2.3 (DPS, per service). Per second.
_AZURE_TIERS: dict[str, dict[str, tuple[float, bool]]] = {   # class -> (rate, scales with units)
    "S1": {"registry": (100 / 60, True), "query": (20 / 60, True), "twin_read": (100.0, False),
           "twin_update": (50.0, False), "jobs": (100 / 60, True)},
    "S2": {"registry": (100 / 60, True), "query": (20 / 60, True), "twin_read": (10.0, True),
           "twin_update": (5.0, True), "jobs": (100 / 60, True)},
    "S3": {"registry": (5000 / 60, True), "query": (1000 / 60, True), "twin_read": (500.0, True),
           "twin_update": (250.0, True), "jobs": (5000 / 60, True)},
}
_AZURE_TIERS["B1"] = _AZURE_TIERS["F1"] = _AZURE_TIERS["S1"]
_AZURE_TIERS["B2"], _AZURE_TIERS["B3"] = _AZURE_TIERS["S2"], _AZURE_TIERS["S3"]
DPS_SERVICE_OPS_PER_SECOND = 1000 / 60
# AzureClient wire-operation names → throttle class (IoT Hub counts bulk registry calls as registry operations;
# whether one call of 100 devices counts once or 100 times is not documented, quotas.md §11).
_AZURE_CLASS_PREFIXES: tuple[tuple[str, str], ...] = (
    ("query_", "query"), ("get_twin", "twin_read"), ("update_twin", "twin_update"), ("replace_twin", "twin_update"),
    ("bulk_", "registry"), ("create_device", "registry"), ("update_device", "registry"),
    ("delete_device", "registry"), ("get_device", "registry"), ("job", "jobs"), ("blob.", "storage"))


def azure_hub_quotas(tier: str = "S1", units: int = 1) -> dict[str, Quota]:
    """The throttles of one IoT Hub (per class, per second) and of its DPS, for a tier and unit count.
    S2's twin rates are max(floor, per-unit rate) in the docs; units × rate is used above the floor."""
    rows = _AZURE_TIERS.get(tier.upper())
    if rows is None:
        raise ValueError(f"unknown IoT Hub tier {tier!r}; known: {', '.join(sorted(_AZURE_TIERS))}")
    if units < 1:
        raise ValueError("an IoT Hub has at least one unit")
    out = {name: Quota(name, rate * units if per_unit else rate, "V", None, "quotas.md §2.1 (S20)")
           for name, (rate, per_unit) in rows.items()}
    if tier.upper() == "S2":
        out["twin_read"] = Quota("twin_read", max(100.0, 10.0 * units), "V", None, "quotas.md §2.1 (S20)")
        out["twin_update"] = Quota("twin_update", max(50.0, 5.0 * units), "V", None, "quotas.md §2.1 (S20)")
    out["dps"] = Quota("dps", DPS_SERVICE_OPS_PER_SECOND, "V", None, "quotas.md §2.3 (S32)")
    return out


def azure_operation_class(operation: str) -> str:
    """The throttle class of an AzureClient wire operation (`query_iot_hub` → query, `enrollment.query` → dps)."""
    if "enrollment" in operation:
        return "dps"
    for prefix, cls in _AZURE_CLASS_PREFIXES:
        if operation.startswith(prefix):
            return cls
    return "arm" if "certificate" in operation or "verification" in operation else "registry"


def overrides_from_env(env: Mapping[str, str], key: str = "FLEETCTL_QUOTAS") -> dict[str, float]:
    """`API=TPS,API=TPS` (raised quotas, e.g. after a Service Quotas increase). Malformed entries raise."""
    out: dict[str, float] = {}
    for part in (env.get(key) or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        try:
            rate = float(value)
        except ValueError:
            rate = -1.0
        if not sep or rate <= 0:
            raise ValueError(f"{key}: expected API=TPS with a positive rate, got {part.strip()!r}")
        out[name.strip()] = rate
    return out


def with_overrides(quotas: Mapping[str, Quota], overrides: Mapping[str, float]) -> dict[str, Quota]:
    out = dict(quotas)
    for api, rate in overrides.items():
        base = out.get(api)
        out[api] = Quota(api, rate, "configured", base.code if base else None, "FLEETCTL_QUOTAS")
    return out


def quota_of(quotas: Mapping[str, Quota], api: str, default: Quota | None = None) -> Quota:
    """`api`'s quota, or the default (AWS_DEFAULT unless given) under its name."""
    q = quotas.get(api)
    if q is None:
        base = default or AWS_DEFAULT
        q = Quota(api, base.tps, base.tag, None, base.source)
    return q


# ---------------------------------------------------------------------------------------------- buckets
@dataclass
class AdaptiveBucket:
    """A token bucket whose rate follows AIMD. Not thread-safe on its own: RateLimiter holds the lock.

    `reserve(now)` takes a token and returns how long the caller must wait before using it (0 when one was
    there): callers queue in the order they reserved, so the bucket never lends more than `rate` per second.
    """

    seed: float
    rate: float = 0.0
    ceiling: float = 0.0
    floor: float = 0.0
    burst: float = 1.0                # seconds of tokens the bucket holds when idle
    tokens: float = 0.0
    stamp: float = 0.0
    last_decrease: float = -math.inf
    successes: int = 0
    throttles: int = 0
    waited: float = 0.0

    def __post_init__(self) -> None:
        self.rate = self.rate or self.seed
        self.ceiling = self.ceiling or self.seed
        self.floor = self.floor or max(self.seed / 50.0, 0.01)
        self.tokens = max(1.0, self.rate * self.burst) if not self.tokens else self.tokens

    @property
    def capacity(self) -> float:
        return max(1.0, self.rate * self.burst)

    def reserve(self, now: float) -> float:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1.0
        wait = 0.0 if self.tokens >= 0 else -self.tokens / self.rate
        self.waited += wait
        return wait

    def take(self, now: float) -> bool:
        """Spend a token if one is there (a server enforcing the quota: no token, no request)."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def succeed(self, increase: float) -> None:
        """Additive increase: `increase` × seed per second of traffic at the current rate."""
        self.successes += 1
        if self.rate < self.ceiling:
            self.rate = min(self.ceiling, self.rate + increase * self.seed / self.rate)

    def throttle(self, now: float, decrease: float, cooldown: float) -> bool:
        """Multiplicative decrease, once per cooldown; the idle burst is spent, so the next request waits."""
        self.throttles += 1
        if now - self.last_decrease < cooldown:
            return False
        self.last_decrease = now
        self.rate = max(self.floor, self.rate * decrease)
        self.tokens = min(self.tokens, 0.0)
        return True


@dataclass
class RateLimiter:
    """Per-API adaptive buckets and a cap on requests in flight; thread-safe.

    `quotas` maps an API (AWS operation name, or an Azure throttle class) to its quota; an API without an
    entry uses `default`. `probe`: let AIMD climb above the seeded quota (up to `probe`× it), for accounts
    whose real quotas were raised but not configured.
    """

    quotas: Mapping[str, Quota]
    default: Quota | None = None
    max_in_flight: int = 32
    increase: float = 0.05
    decrease: float = 0.5
    cooldown: float = 1.0
    burst: float = 1.0
    probe: float = 1.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    buckets: dict[str, AdaptiveBucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _slots: threading.BoundedSemaphore | None = None

    def __post_init__(self) -> None:
        self._slots = threading.BoundedSemaphore(self.max_in_flight)

    def quota(self, api: str) -> Quota:
        return quota_of(self.quotas, api, self.default)

    def _bucket(self, api: str) -> AdaptiveBucket:
        bucket = self.buckets.get(api)
        if bucket is None:
            seed = self.quota(api).tps
            bucket = AdaptiveBucket(seed, ceiling=seed * max(1.0, self.probe), burst=self.burst, stamp=self.clock())
            self.buckets[api] = bucket
        return bucket

    def acquire(self, api: str) -> float:
        """Take a token for one request to `api`, sleeping until it is due; returns the seconds waited."""
        with self._lock:
            wait = self._bucket(api).reserve(self.clock())
        if wait > 0:
            self.sleep(wait)
        return wait

    def succeeded(self, api: str) -> None:
        with self._lock:
            self._bucket(api).succeed(self.increase)

    def throttled(self, api: str) -> bool:
        """Record a Throttled answer; True when it lowered the rate."""
        with self._lock:
            return self._bucket(api).throttle(self.clock(), self.decrease, self.cooldown)

    @contextmanager
    def guard(self, api: str) -> Iterator[None]:
        """Around one wire call: a slot among the requests in flight, a token, then AIMD feedback from the
        outcome (`Throttled` decreases; any other error is the caller's business and leaves the rate alone)."""
        assert self._slots is not None
        self.acquire(api)
        with self._slots:
            try:
                yield
            except Throttled:
                self.throttled(api)
                raise
        self.succeeded(api)

    def rate(self, api: str) -> float:
        with self._lock:
            return self._bucket(api).rate

    def stats(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {api: {"seed": b.seed, "rate": round(b.rate, 3), "successes": b.successes,
                          "throttles": b.throttles, "waitedSeconds": round(b.waited, 3)}
                    for api, b in sorted(self.buckets.items())}


# ---------------------------------------------------------------------------------------------- estimate
CallCounter = Callable[[Any], Mapping[str, int]]


@dataclass(frozen=True)
class Estimate:
    """How long an apply of these calls takes at the quotas: per wave of concurrent changes the slowest API
    (calls / TPS), or the concurrency bound (calls × latency / workers) when that is slower; summed over waves."""

    seconds: float
    binding: str                      # the API (or "concurrency") that sets the pace for the longest time
    binding_tps: float | None
    calls: dict[str, int]
    code: str | None = None
    tag: str = ""
    unknown: tuple[str, ...] = ()     # kinds/actions that declare no call table

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seconds": round(self.seconds, 1), "binding": self.binding, "calls": self.calls,
                               "mutatingCalls": sum(self.calls.values())}
        if self.binding_tps is not None:
            out["bindingTps"] = self.binding_tps
        if self.code:
            out["quotaCode"] = self.code
        if self.tag:
            out["quotaTag"] = self.tag
        if self.unknown:
            out["notEstimated"] = list(self.unknown)
        return out


def estimate(waves: Sequence[Sequence[Any]], counter: Callable[[Any], Mapping[str, int] | None],
             quotas: Mapping[str, Quota], *, workers: int = 8, latency: float = 0.05,
             default: Quota | None = None) -> Estimate:
    """Apply duration at the quotas. `counter(change)` gives the change's mutating calls per API (None when
    its kind declares none); `waves` are the groups of changes apply runs concurrently."""
    total: Counter[str] = Counter()
    bound_for: Counter[str] = Counter()
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
AZURE_CLASS_WORDS: dict[str, str] = {"registry": "identity registry operations", "query": "queries",
                                     "twin_read": "twin reads", "twin_update": "twin updates",
                                     "jobs": "jobs operations", "dps": "DPS service operations"}


def _azure_hint(binding: str, tier: str) -> str:
    """How an operator raises an IoT Hub throttle: more units of the tier where it scales per unit."""
    if binding == "dps":
        return "a per-service DPS limit that hub units do not raise"
    per_unit = _AZURE_TIERS.get(tier.upper(), {}).get(binding, (0.0, False))[1]
    if tier.upper() == "S2" and binding in ("twin_read", "twin_update"):
        per_unit = True               # max(floor, per-unit rate): units above the floor raise it
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
    head = f"Apply: {plural(int(data['mutatingCalls']), 'API call')}, " + (took if took.startswith("under") else
                                                                            f"about {took}")
    binding = data["binding"]
    tag = data.get("quotaTag") or ""
    if binding == "concurrency":
        text = f"{head}, bound by the changes in flight rather than a quota (raise FLEETCTL_WORKERS, default 8)"
    elif binding in AZURE_CLASS_WORDS:
        tier, units = str(data.get("hubTier") or ""), int(data.get("hubUnits") or 1)   # no tier: an older plan file
        where = "the configured quotas (FLEETCTL_QUOTAS)" if tag == "configured" else \
            (f"the IoT Hub's {tier} quotas" if tier else "the IoT Hub's quotas") + (f" for {units} units" if units > 1
                                                                                  else "")
        hint = _azure_hint(binding, tier) if tier else "raise with more hub units or a higher tier"
        text = (f"{head} at {where} (bound by {AZURE_CLASS_WORDS[binding]}, {quota_rate(float(data['bindingTps']))}; "
                f"{hint})")
    else:
        where = "the configured quotas (FLEETCTL_QUOTAS)" if tag == "configured" else "default AWS quotas"
        rate = quota_rate(float(data["bindingTps"])) + {"H": " per the 2019 AWS docs", "U": " assumed"}.get(tag, "")
        raise_it = (f"raise with Service Quotas {data['quotaCode']}" if data.get("quotaCode")
                    else "raise with a Service Quotas increase request")
        text = f"{head} at {where} (bound by {binding}, {rate}; {raise_it})"
    if data.get("notEstimated"):
        text += f" (not estimated: {', '.join(data['notEstimated'])})"
    for note in data.get("notes") or ():
        text += "; " + note["line"]
    return text


# ---------------------------------------------------------------------------------------------- configuration
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def _loopback(url: str | None) -> bool:
    from urllib.parse import urlparse
    return bool(url) and (urlparse(url).hostname or "") in LOOPBACK_HOSTS


def limiter_from_env(env: Mapping[str, str], quotas: Mapping[str, Quota], endpoint: str | None, *,
                     default: Quota | None = None) -> RateLimiter | None:
    """The limiter a client should use, from FLEETCTL_RATE_LIMIT (`auto` | `on` | `off`) and FLEETCTL_QUOTAS.

    `auto` (the default) paces every cloud endpoint and leaves a loopback emulator unpaced, because a local
    emulator has no quotas to respect unless it was started quota-faithful (`fleetctl sandbox up
    --quota-faithful` exports FLEETCTL_RATE_LIMIT=on). FLEETCTL_RATE_PROBE=F lets AIMD climb to F× the quotas.
    """
    mode = (env.get("FLEETCTL_RATE_LIMIT") or "auto").lower()
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"FLEETCTL_RATE_LIMIT must be auto, on or off, not {mode!r}")
    if mode == "off" or (mode == "auto" and _loopback(endpoint)):
        return None
    probe = float(env.get("FLEETCTL_RATE_PROBE") or 1.0)
    return RateLimiter(with_overrides(quotas, overrides_from_env(env)), default=default, probe=probe)


def aws_limiter(env: Mapping[str, str], endpoint: str | None) -> RateLimiter | None:
    return limiter_from_env(env, AWS_IOT_QUOTAS, endpoint, default=AWS_DEFAULT)


def plan_quotas(env: Mapping[str, str]) -> dict[str, Quota]:
    """Every API's default quota a plan may touch: AWS IoT by operation name, the Azure hub (tier and units
    from FLEETCTL_AZURE_HUB_TIER, e.g. `S1` or `S3:2`) by throttle class, with FLEETCTL_QUOTAS applied."""
    tier, _, units = (env.get("FLEETCTL_AZURE_HUB_TIER") or "S1").partition(":")
    return with_overrides({**AWS_IOT_QUOTAS, **azure_hub_quotas(tier, int(units or 1))}, overrides_from_env(env))


def apply_estimate(waves: Sequence[Sequence[Any]], env: Mapping[str, str], workers: int,
                   note_sources: Sequence[Callable[..., Mapping[str, Any] | None]] = ()) -> dict[str, Any]:
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
    out = estimate(([forward] if forward else []) + deletes, counter, quotas, workers=workers,
                   default=AWS_DEFAULT).to_json()
    if out.get("binding") in AZURE_CLASS_WORDS:
        tier, _, units = (env.get("FLEETCTL_AZURE_HUB_TIER") or "S1").partition(":")
        out["hubTier"], out["hubUnits"] = tier.strip().upper(), int(units or 1)   # the sentence's "raise with"
    notes = [dict(n) for source in note_sources
             if (n := source(waves, counter, lambda api: quota_of(quotas, api, AWS_DEFAULT).tps))]
    if notes:
        out["notes"] = notes
    return out
