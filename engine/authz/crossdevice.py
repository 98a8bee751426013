"""Cross-device access, proven by a concrete request: "esp32-A can publish to dt/esp32-B/telemetry".

Why: Device Defender's "AWS IoT policies overly permissive" check (IOT_POLICY_OVERLY_PERMISSIVE_CHECK) flags a
policy that "grants permission to send or receive MQTT messages for a broad set of devices, or ... to access
or modify shadow and job execution data for a broad set of devices"; "a policy for a device should grant access
to resources associated with just that device". fleetctl decides it on the desired fleet without guessing from
the text: it builds the requests that belong to another declared thing B and evaluates them for device A.

B's own requests (each names B):
- connecting with B's thing name as client id (`iot:Connect` on `client/B`, the session's client id being B);
- the per-thing topics AWS IoT reserves for B's Device Shadow (`$aws/things/B/shadow/...`: publish `update`,
  subscribe and receive `update/accepted`) and B's shadow itself (`iot:GetThingShadow`, `iot:UpdateThingShadow` on
  `thing/B`) (developer guide, "Reserved topics");
- every resource the Allow statements in effect for B grant B through a thing variable
  (`topic/dt/${iot:Connection.Thing.ThingName}/*` → `topic/dt/B/telemetry`) or by B's literal name, wildcards
  filled in (`*` → `telemetry`, `?` → `x`) and kept only when B itself is allowed it.
A finding is such a request that A (connected with its own name as client id, or as B for Connect) is allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from engine.authz.evaluate import Request, Result, evaluate
from engine.authz.policy import ESCAPES, Effect, own_name
from engine.authz.principals import AuthzFleet, Connection, Fold, ThingNode
from engine.authz.variables import THING, substitute

OTHER_FOLDS = 20  # B candidates from other folds, per fold (bounded: folds × 20 evaluations) ...
MANY_FOLDS = 1000  # ... and 2 beyond this many folds (one policy per device with its own variables)
_FILL = re.compile(r"\$\([*?$]\)|[*?]")


@dataclass(frozen=True)
class CrossAccess:
    """Device `device` (and `count - 1` others with the same permissions) may make `request`, which belongs to
    `other`; `result.deciding` names the Allow statements."""

    connection: Connection
    other: ThingNode
    request: Request
    client_id: str
    result: Result
    count: int

    @property
    def device(self) -> str:
        return self.connection.thing.name

    def sentence(self, fleet: AuthzFleet, count: int | None = None) -> str:
        verb = {
            "iot:connect": "connect as client id",
            "iot:publish": "publish to",
            "iot:subscribe": "subscribe to",
            "iot:receive": "receive from",
            "iot:getthingshadow": "read the shadow of",
            "iot:updatethingshadow": "update the shadow of",
        }.get(self.request.action.lower(), self.request.action)
        resource = self.request.resource.split(":", 5)[-1].split("/", 1)[-1]
        if self.request.action.lower() == "iot:connect":
            resource = self.client_id
        count = self.count if count is None else count
        others = f" (and {count - 1:,} other thing(s) with the same permissions)" if count > 1 else ""
        return f"{self.device}{others} can {verb} {resource}, which is {self.other.name}'s"


def _fill(text: str) -> str:
    return _FILL.sub(lambda m: ESCAPES.get(m.group(0), "telemetry" if m.group(0) == "*" else "x"), text)


def own_requests(fleet: AuthzFleet, thing: ThingNode) -> list[tuple[Request, str]]:
    """The requests that belong to `thing` (with the client id they are made with), named by it."""
    target, name = thing.target, thing.name
    out = [
        (Request("iot:Connect", fleet.arn(target, "client", name)), name),
        (Request("iot:Publish", fleet.arn(target, "topic", f"$aws/things/{name}/shadow/update")), ""),
        (Request("iot:Subscribe", fleet.arn(target, "topicfilter", f"$aws/things/{name}/shadow/update/accepted")), ""),
        (Request("iot:Receive", fleet.arn(target, "topic", f"$aws/things/{name}/shadow/update/accepted")), ""),
        (Request("iot:UpdateThingShadow", fleet.arn(target, "thing", name)), ""),
    ]
    for conn in fleet.connections(thing):
        if conn.refused:
            continue
        session, policies = conn.session(name)
        for policy in policies:
            for st in policy.statements:
                if st.effect != Effect.ALLOW or st.actions is None or not st.resources:
                    continue
                for pattern in st.resources:
                    if THING not in pattern and not own_name(name).search(pattern):
                        continue
                    text = substitute(pattern, session)
                    if text is None:
                        continue
                    resource = _fill(text)
                    if name not in resource:
                        continue
                    for action in st.actions:
                        if "*" in action or "?" in action:
                            continue
                        request = Request(action, resource)
                        if evaluate(policies, request, session).allowed:
                            out.append((request, name if action.lower() == "iot:connect" else ""))
    seen: set[tuple[Request, str]] = set()
    unique = []
    for request, client in out:
        if (request, client) not in seen:
            seen.add((request, client))
            unique.append((request, client))
    return unique


def cross_device(
    fleet: AuthzFleet, folds: Sequence[Fold], *, others: Iterable[ThingNode] | None = None, limit_per_fold: int = 3
) -> list[CrossAccess]:
    """Concrete cross-device requests allowed, at most `limit_per_fold` per fold (one proof is enough; the finding
    names how many things share the permissions)."""
    by_target: dict[str, list[ThingNode]] = {}
    for t in others if others is not None else fleet.things.values():
        by_target.setdefault(t.target, []).append(t)
    reps: dict[str, list[ThingNode]] = {}
    for f in folds:
        reps.setdefault(f.representative.thing.target, []).append(f.representative.thing)
    out: list[CrossAccess] = []
    others_n = OTHER_FOLDS if len(folds) <= MANY_FOLDS else 2
    owned: dict[tuple[str, str], list[tuple[Request, str]]] = {}
    for f in folds:
        conn = f.representative
        if conn.refused:
            continue
        a = conn.thing
        candidates: list[ThingNode] = []
        for m in f.members[1:2]:
            candidates.append(m.thing)
        for t in reps.get(a.target, [])[: others_n + 1]:
            if t.name != a.name and t not in candidates:
                candidates.append(t)
        if not candidates:
            candidates = [t for t in sorted(by_target.get(a.target, []), key=lambda t: t.name) if t.name != a.name][:1]
        found = 0
        for b in candidates:
            key = (b.target, b.name)
            if key not in owned:
                owned[key] = own_requests(fleet, b)
            for request, client in owned[key]:
                client_id = client or a.name
                session, policies = conn.session(client_id)
                result = evaluate(policies, request, session)
                if result.allowed:
                    out.append(CrossAccess(conn, b, request, client_id, result, len(f.members)))
                    found += 1
                    if found >= limit_per_fold:
                        break
            if found >= limit_per_fold:
                break
    return out
