"""Each thing's effective policy set, built from the desired fleet (no cloud call), and the folding of things
whose permissions are the same up to their own name.

Why its own module: "which policies are in effect when device X connects" is where AWS IoT's rules about
principals live; the evaluator only sees a list of policies and a session.

Rules followed (AWS IoT Core developer guide):
- "AWS IoT Core policies": policies are attached to X.509 certificates (principals) and to thing groups; "the
  policies attached to a thing group apply to any thing within that group. For the policy to take effect, the
  clientId and the thing name must match." So a connection whose client id is not the thing name has only its
  certificate's policies in effect.
- "Static thing groups": a policy attached to a parent group is inherited by its child groups and by all things
  in the group and its child groups (`parent` chains, to any depth).
- "Thing policy variables": the thing a connection resolves to is the one the certificate is attached to
  (exclusive association), or, when it is attached to several, the one whose name is the client id.
- "Certificates" (certificate status): only an ACTIVE certificate authenticates; an INACTIVE or REVOKED one is
  refused at the TLS handshake, so every request of that connection is (implicitly) denied.
- A thing without a declared certificate (JITP, fleet provisioning: docs/performance.md) is evaluated as a
  connection through a certificate attached to that thing only, carrying no policy of its own.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.authz.evaluate import condition_holds
from engine.authz.policy import PathT, Policy, parse_policy
from engine.authz.variables import CLIENT_ID, THING, THING_NAME, CertFacts, Session, ThingFacts, cert_facts, resolve
from engine.diagnostics import Source
from engine.model import DesiredResource

PLACEHOLDER_ACCOUNT = "123456789012"  # the developer guide's example account (and the example fleet's)
_ARN_ACCOUNT = re.compile(r"^arn:aws[a-z-]*:iot:[^:]*:(\d{12}):")
_ARN_REGION = re.compile(r"^arn:aws[a-z-]*:iot:([a-z]{2}(?:-gov)?-[a-z]+-\d):")


@dataclass(frozen=True)
class CertNode:
    name: str
    target: str
    status: str
    policies: tuple[str, ...]
    ca: str | None
    pem: str | None
    source: Source | None = None

    @property
    def facts(self) -> CertFacts | None:
        if not self.pem:
            return None
        try:
            return cert_facts(self.pem)
        except ValueError:
            return None


@dataclass(frozen=True)
class GroupNode:
    name: str
    target: str
    parent: str | None
    policies: tuple[str, ...]


@dataclass(frozen=True)
class ThingNode:
    name: str
    target: str
    thing_type: str | None
    attributes: Mapping[str, str]
    groups: tuple[str, ...]
    principals: tuple[str, ...]
    source: Source | None = None

    @property
    def facts(self) -> ThingFacts:
        return ThingFacts(self.name, self.thing_type, self.attributes)


@dataclass(frozen=True)
class Connection:
    """One way a thing connects: through one of its certificates (None: a certificate provisioned later).
    `policies` are in effect when the client id is the thing name; `certificate_policies` for any other one."""

    thing: ThingNode
    certificate: CertNode | None
    policies: tuple[Policy, ...]
    certificate_policies: tuple[Policy, ...]
    attached: tuple[str, ...]  # the things the certificate is attached to
    refused: str = ""

    @property
    def label(self) -> str:
        return f"certificate '{self.certificate.name}'" if self.certificate else "a certificate provisioned for it"

    def session(
        self, client_id: str | None, *, keep: frozenset[str] = frozenset()
    ) -> tuple[Session, tuple[Policy, ...]]:
        """The session for `client_id` and the policies in effect for it."""
        if client_id is not None and client_id in self.attached:
            resolved = self.thing if client_id == self.thing.name else None
        elif len(self.attached) == 1:
            resolved = self.thing
        else:
            resolved = None
        policies = self.policies if client_id == self.thing.name else self.certificate_policies
        needs_cert = self.certificate is not None and any(
            v.startswith("iot:Certificate") for p in policies for v in p.variables
        )
        facts = self.certificate.facts if needs_cert and self.certificate else None  # parsed only when used
        session = Session(client_id, resolved.facts if resolved else None, facts, keep)
        return session, policies


def target_specs(fleet: Any) -> dict[str, dict[str, Any]]:
    """A loaded fleet's Targets as `AuthzFleet.build` and `permission_delta` take them: name → {region, accountId}."""
    return {
        name: (
            {"region": m.spec.aws.region, "accountId": m.spec.aws.accountId}
            if getattr(m.spec, "aws", None) is not None
            else {}
        )
        for name, m in fleet.targets().items()
    }


@dataclass
class AuthzFleet:
    """The desired fleet's principals, groups, things and policies, indexed for evaluation."""

    policies: dict[tuple[str, str], Policy] = field(default_factory=dict)
    certificates: dict[tuple[str, str], CertNode] = field(default_factory=dict)
    cas: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    groups: dict[tuple[str, str], GroupNode] = field(default_factory=dict)
    things: dict[tuple[str, str], ThingNode] = field(default_factory=dict)
    regions: dict[str, str] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)
    attached: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)  # cert → things
    _memo: dict[Any, Any] = field(default_factory=dict, repr=False)  # per group set / policy-name set (100k things)

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        desired: Iterable[DesiredResource],
        *,
        targets: Mapping[str, Mapping[str, Any]] | None = None,
        source_of: Callable[[DesiredResource, PathT], Source] | None = None,
    ) -> AuthzFleet:
        """From desired resources (a loaded fleet's, or a plan's). `targets` maps a Target name to its `aws`
        section (region, accountId); `source_of(resource, path)` gives the manifest position of a path below
        the resource's spec (policy statements are named by file:line with it)."""
        from engine.manifest.fleet import paused_gc  # 100,000 things: no garbage cycles, millions of objects

        with paused_gc():
            return cls._build(desired, targets, source_of)

    @classmethod
    def _build(
        cls,
        desired: Iterable[DesiredResource],
        targets: Mapping[str, Mapping[str, Any]] | None,
        source_of: Callable[[DesiredResource, PathT], Source] | None,
    ) -> AuthzFleet:
        out = cls()
        attached: dict[tuple[str, str], list[str]] = {}
        for r in desired:
            if not r.kind.startswith("aws."):
                continue
            target, name, spec = r.address.target, r.address.name, r.spec
            if r.kind == "aws.Policy":
                where = (lambda p, _r=r: source_of(_r, ("document",) + p)) if source_of else None
                out.policies[(target, name)] = parse_policy(
                    name, spec.get("document"), target=target, source=r.source, source_of=where
                )
            elif r.kind == "aws.Certificate":
                out.certificates[(target, name)] = CertNode(
                    name,
                    target,
                    str(spec.get("status", "ACTIVE")),
                    tuple(spec.get("policies") or ()),
                    spec.get("caCertificate"),
                    r.inputs.get("certificatePem"),
                    r.source,
                )
            elif r.kind == "aws.CACertificate":
                out.cas[(target, name)] = {
                    "status": spec.get("status", "ACTIVE"),
                    "source": r.source,
                    "pem": r.inputs.get("certificatePem"),
                }
            elif r.kind == "aws.ThingGroup":
                out.groups[(target, name)] = GroupNode(
                    name, target, spec.get("parent"), tuple(spec.get("policies") or ())
                )
            elif r.kind == "aws.Thing":
                thing = ThingNode(
                    name,
                    target,
                    spec.get("thingType"),
                    dict(spec.get("attributes") or {}),
                    tuple(spec.get("groups") or ()),
                    tuple(spec.get("principals") or ()),
                    r.source,
                )
                out.things[(target, name)] = thing
                for cert in thing.principals:
                    attached.setdefault((target, cert), []).append(name)
        out.attached = {k: tuple(sorted(v)) for k, v in attached.items()}
        for name, aws in (targets or {}).items():
            if aws and aws.get("region"):
                out.regions[name] = str(aws["region"])
            if aws and aws.get("accountId"):
                out.accounts[name] = str(aws["accountId"])
        return out

    @classmethod
    def from_fleet(cls, fleet: Any) -> AuthzFleet:
        """From a loaded `engine.manifest.fleet.Fleet` (statement positions from its manifests)."""
        docs = {m.address: m.doc for m in fleet.manifests}
        targets = target_specs(fleet)

        def source_of(r: DesiredResource, path: PathT) -> Source:
            doc = docs.get(r.address)
            return doc.source(("spec",) + path) if doc is not None else (r.source or Source(""))

        return cls.build(fleet.desired, targets=targets, source_of=source_of)

    # ------------------------------------------------------------------ ARNs
    def account(self, target: str) -> tuple[str, bool]:
        """The Target's account id, and whether it is a placeholder: the Target's `accountId`; else the one
        account the target's policies name in their ARNs; else 123456789012 (the developer guide's example)."""
        if target in self.accounts:
            return self.accounts[target], False
        known: tuple[str, bool] | None = self._memo.get(("account", target))
        if known is not None:
            return known
        seen = Counter(
            m.group(1)
            for (t, _), p in self.policies.items()
            if t == target
            for st in p.statements
            for res in (st.resources or ()) + (st.not_resources or ())
            if (m := _ARN_ACCOUNT.match(res))
        )
        memo = self._memo[("account", target)] = (
            (seen.most_common(1)[0][0] if len(seen) == 1 else PLACEHOLDER_ACCOUNT),
            True,
        )
        return memo

    def region(self, target: str) -> str:
        """The Target's region; without a Target spec (a plan's resources alone), the one region its policies'
        ARNs name, else us-east-1 (the developer guide's examples)."""
        if target in self.regions:
            return self.regions[target]
        memo = self._memo.get(("region", target))
        if memo is None:
            seen = {
                m.group(1)
                for (t, _), p in self.policies.items()
                if t == target
                for st in p.statements
                for res in (st.resources or ()) + (st.not_resources or ())
                if (m := _ARN_REGION.match(res))
            }
            memo = self._memo[("region", target)] = seen.pop() if len(seen) == 1 else "us-east-1"
        return memo

    def arn(self, target: str, kind: str, name: str) -> str:
        return f"arn:aws:iot:{self.region(target)}:{self.account(target)[0]}:{kind}/{name}"

    # ------------------------------------------------------------------ principals
    def group_chain(self, target: str, group: str) -> list[GroupNode]:
        """The group and its ancestors (parent first reached last); a cycle stops the walk."""
        out: list[GroupNode] = []
        seen: set[str] = set()
        name: str | None = group
        while name and name not in seen:
            seen.add(name)
            node = self.groups.get((target, name))
            if node is None:
                break
            out.append(node)
            name = node.parent
        return out

    def _policies(self, target: str, names: Iterable[str]) -> tuple[Policy, ...]:
        key = (target, frozenset(names))
        found = self._memo.get(key)
        if found is None:
            found = tuple(self.policies[(target, n)] for n in sorted(key[1]) if (target, n) in self.policies)
            self._memo[key] = found
        return found

    def group_policy_names(self, thing: ThingNode) -> tuple[str, ...]:
        key = ("groups", thing.target, thing.groups)
        found = self._memo.get(key)
        if found is None:
            names: list[str] = []
            for group in thing.groups:
                for node in self.group_chain(thing.target, group):
                    names.extend(node.policies)
            found = self._memo[key] = tuple(sorted(set(names)))
        return found

    def connections(self, thing: ThingNode) -> list[Connection]:
        group_names = self.group_policy_names(thing)
        out = []
        for cert_name in thing.principals or (None,):
            cert = self.certificates.get((thing.target, cert_name)) if cert_name else None
            cert_names = cert.policies if cert else ()
            refused = ""
            if cert is not None and cert.status != "ACTIVE":
                refused = f"certificate '{cert.name}' is {cert.status}: AWS IoT refuses its connection"
            attached = self.attached.get((thing.target, cert_name), (thing.name,)) if cert_name else (thing.name,)
            out.append(
                Connection(
                    thing,
                    cert,
                    self._policies(thing.target, set(cert_names) | set(group_names)),
                    self._policies(thing.target, cert_names),
                    attached,
                    refused,
                )
            )
        return out

    def thing(self, name: str, target: str | None = None) -> ThingNode | None:
        if target is not None:
            return self.things.get((target, name))
        found = [t for (tg, n), t in self.things.items() if n == name]
        return found[0] if len(found) == 1 else None


# ------------------------------------------------------------------------------------------- folding
def _substitutable(var: str, values: tuple[str, ...] | None) -> bool:
    """Whether substitution would put this value in a resource (one value; no wildcard from a certificate)."""
    if values is None or len(values) != 1:
        return False
    return not (var.startswith("iot:Certificate.") and ("*" in values[0] or "?" in values[0]))


def symbolic_keep(conn: Connection, client_id: str | None, *, all_variables: bool = False) -> frozenset[str]:
    """The variables kept symbolic for this connection: the thing name, and every variable whose value is the
    thing's own name (the client id, a CN equal to it ...); with `all_variables`, every variable that resolves
    (its type, attributes, certificate fields), so that things differing only in those values read the same."""
    keep = {THING_NAME}
    session, policies = conn.session(client_id)
    for policy in policies:
        for var in policy.variables:
            values = resolve(var, session)
            if not _substitutable(var, values):
                continue
            if values == (conn.thing.name,) or (all_variables and var != CLIENT_ID):
                keep.add(var)
    if client_id == conn.thing.name:
        keep.add(CLIENT_ID)
    return frozenset(keep)


def fold_key(conn: Connection, *, all_variables: bool = False) -> tuple[Any, ...]:
    """Two connections with the same key have the same permissions up to their thing's own name: the same
    policies in effect, status, attachment shape, the same outcome for every condition, and the same values for
    every variable the policies use other than the thing name (values equal to the thing's name count as the
    name). With `all_variables` only whether each variable resolves counts, not its value, and policies count by
    content, not by name (the matrix, lint)."""
    name = conn.thing.name
    session, policies = conn.session(name)
    used = sorted({v for p in policies + conn.certificate_policies for v in p.variables})
    values: list[tuple[str, str | int | tuple[str, ...] | None]] = []
    for var in used:
        if var in (THING_NAME, CLIENT_ID):
            continue
        got = resolve(var, session)
        if all_variables:
            values.append((var, "substituted" if _substitutable(var, got) else len(got) if got else None))
        else:
            values.append((var, tuple("\0" if v == name else v for v in got) if got is not None else None))
    shape = "exclusive" if len(conn.attached) == 1 else f"shared:{len(conn.attached)}"
    outcomes = tuple(
        condition_holds(c, session)
        for p in policies
        for st in p.statements
        for c in st.conditions
        if all_variables or c.key in (THING_NAME, CLIENT_ID) or any("${" in v for v in c.values)
    )
    ident = (lambda p: p.content_without(name)) if all_variables else (lambda p: p.name)  # noqa: E731
    return (
        conn.thing.target,
        tuple(sorted(map(ident, policies))) if all_variables else tuple(map(ident, policies)),
        tuple(sorted(map(ident, conn.certificate_policies)))
        if all_variables
        else tuple(map(ident, conn.certificate_policies)),
        conn.refused != "",
        shape,
        tuple(values),
        conn.certificate is None,
        outcomes,
    )


@dataclass(frozen=True)
class Fold:
    """Connections with the same fold key: the first (by thing name) stands for all."""

    key: tuple[Any, ...]
    members: tuple[Connection, ...]

    @property
    def representative(self) -> Connection:
        return self.members[0]


def fold(connections: Iterable[Connection], *, all_variables: bool = False) -> list[Fold]:
    """Connections grouped by `fold_key` (see there for `all_variables`)."""
    from engine.manifest.fleet import paused_gc

    groups: dict[tuple[Any, ...], list[Connection]] = {}
    with paused_gc():
        for c in connections:
            groups.setdefault(fold_key(c, all_variables=all_variables), []).append(c)
    out = [Fold(k, tuple(sorted(v, key=lambda c: (c.thing.name, c.label)))) for k, v in groups.items()]
    return sorted(
        out, key=lambda f: (f.representative.thing.target, f.representative.thing.name, f.representative.label)
    )


def all_connections(fleet: AuthzFleet, things: Sequence[ThingNode] | None = None) -> Iterator[Connection]:
    for thing in things if things is not None else sorted(fleet.things.values(), key=lambda t: (t.target, t.name)):
        yield from fleet.connections(thing)


def uses_thing_variables(policies: Iterable[Policy]) -> bool:
    return any(v.startswith(THING) for p in policies for v in p.variables)
