"""Lint rules on effective permissions and on the certificates behind them: the AWS IoT Device Defender audit
checks that the desired fleet decides, the device ↔ cloud cross-checks, and their Azure counterparts.

Why a module of its own: FL001–FL010 read policy *text* (a wildcard action, a resource without the thing
variable); these rules evaluate what each device may actually do (engine/authz), over the expanded fleet
(ThingSet rows included), and prove each finding with a concrete request ("esp32-A can publish to
dt/esp32-B/telemetry"). Device Defender checks (IoT Device Defender guide, "Audit checks") and where they are:
- AWS IoT policies overly permissive (IOT_POLICY_OVERLY_PERMISSIVE_CHECK): FL011, cross-device access proven by
  evaluating another declared thing's own requests (engine/authz/crossdevice.py); FL001/FL002 keep the textual
  `iot:*` / `*` findings.
- AWS IoT policy potentially misconfigured (IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK, reason codes
  POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT and TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS):
  FL012, MQTT wildcards (`#`, `+`) in Allow or Deny topic/topicfilter resources, literal in a policy, and a Deny
  that a device defeats by subscribing with an MQTT wildcard filter the Allows permit.
- Device certificate shared: FL004. CA and device certificate expiring: FL005. Device certificate age: FL014.
- CA / device certificate key quality (RSA below 2048 bits, curves below 256 bits, DSA): FL013.
- Revoked (here: INACTIVE or REVOKED) CA certificate with ACTIVE device certificates (intermediate CA revoked for
  active device certificates, revoked CA certificate still active): FL015.
- Revoked device certificate still active (REVOKED but still attached to a thing or still carrying policies, so
  reactivating it restores access): FL016.
- Role alias overly permissive and logging disabled: the fleet declares no role aliases or logging options
  (no such kinds), so there is nothing to check.
Device ↔ cloud cross-checks (engine/providers/device/crosscheck.py, as `plan --dumps` warns): FL017.
Azure (DPS, IoT Hub): symmetric-key attestation where X.509 is possible (FL018), one enrollment-group key reused
by other enrollments or devices (FL019), X.509 devices and enrollment groups without a verified CA (FL020).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

from engine.authz.evaluate import Decision, Request, evaluate
from engine.authz.policy import Effect, Statement
from engine.authz.principals import Fold, all_connections, fold
from engine.lint import Hit, Level, LintContext, ManifestDoc, PathT, rule, walk

AWS = "aws.fleetctl.io"
AZURE = "azure.fleetctl.io"
MQTT_WILDCARD = re.compile(r"[#+]")
WEAK_CURVE_BITS = 256


def _statement_hit(
    ctx: LintContext, st: Statement, target: str | None, message: str, level: Level | None = None
) -> Hit | None:
    doc = ctx.doc_for(AWS, "Policy", st.policy, target)
    if doc is None:
        return None
    return Hit(doc, ("spec", "document", "Statement", st.index), message, level)


def _folds(ctx: LintContext) -> list[Fold]:
    if "authz.folds" not in ctx.cache:
        ctx.cache["authz.folds"] = fold(all_connections(ctx.authz), all_variables=True)
    folds: list[Fold] = ctx.cache["authz.folds"]
    return folds


# ------------------------------------------------------------------------------------ effective permissions
@rule(
    "FL011",
    "policy-cross-device",
    Level.ERROR,
    security_severity=9.0,
    summary="a device may publish, subscribe, receive, connect or use the shadow as another declared device "
    "(Device Defender: IoT policies overly permissive)",
    hint="scope each resource to the device: client/${iot:Connection.Thing.ThingName}, "
    "topic/dt/${iot:Connection.Thing.ThingName}/*; `fleetctl authz matrix` shows what each device may do",
)
def policy_cross_device(ctx: LintContext, options: Mapping[str, Any]) -> Iterator[Hit]:
    from engine.authz.crossdevice import cross_device

    fleet = ctx.authz
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for found in cross_device(fleet, _folds(ctx)):
        key = (
            found.connection.thing.target,
            tuple((s.policy, s.index) for s in found.result.deciding),
            found.request.action.lower(),
        )
        groups.setdefault(key, []).append(found)
    for (target, _, _), items in groups.items():  # one finding per statement(s) and action, with every fold
        first = items[0]
        count = sum({f.connection.thing.name: f.count for f in items}.values())
        where = "; ".join(s.where for s in first.result.deciding)
        hit = _statement_hit(
            ctx,
            first.result.deciding[0],
            target,
            f"{first.sentence(fleet, count)} (request {first.request.action} "
            f"{first.request.resource}, client id {first.client_id}): allowed by {where}",
        )
        if hit:
            yield hit


def _mqtt_candidates(topic: str) -> list[str]:
    """MQTT filters that cover `topic`: a trailing `#` at every level, and `+` in place of each level."""
    levels = topic.split("/")
    out = ["/".join(levels[:k] + ["#"]) for k in range(len(levels))]
    out += ["/".join(levels[:k] + ["+"] + levels[k + 1 :]) for k in range(len(levels))]
    return out


@rule(
    "FL012",
    "policy-mqtt-wildcard",
    Level.WARNING,
    security_severity=6.0,
    summary="MQTT wildcards (#, +) in a policy resource are literal, and a Deny that MQTT wildcard filters "
    "defeat (Device Defender: IoT policy potentially misconfigured)",
    hint="use the policy wildcards * and ? in resources; deny a subtree with topicfilter/a/* and topic/a/*, "
    "and deny iot:Receive on the topics, not only iot:Subscribe on one filter",
)
def policy_mqtt_wildcard(ctx: LintContext, options: Mapping[str, Any]) -> Iterator[Hit]:
    fleet = ctx.authz
    for (target, _), policy in sorted(fleet.policies.items(), key=lambda kv: (kv[0][0] or "", kv[0][1])):
        for st in policy.statements:
            for resource in (st.resources or ()) + (st.not_resources or ()):
                kind = resource.split(":", 5)[-1].split("/", 1)[0] if resource.startswith("arn:") else ""
                if kind not in ("topic", "topicfilter") or not MQTT_WILDCARD.search(resource.split("/", 1)[-1]):
                    continue
                name = resource.split(":", 5)[-1]
                if st.effect == Effect.DENY:
                    msg = (
                        f"Deny on '{name}' holds an MQTT wildcard, which a policy reads literally: it denies only "
                        f"that exact {'filter' if kind == 'topicfilter' else 'topic name'}, not the topics it "
                        "would match (POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT)"
                    )
                else:
                    msg = f"Allow on '{name}' holds an MQTT wildcard, which a policy reads literally: " + (
                        "a device may subscribe with that very filter, receiving every topic it matches "
                        "where iot:Receive allows"
                        if kind == "topicfilter"
                        else "it allows only a topic literally named so (use * for 'any subtopic')"
                    )
                hit = _statement_hit(ctx, st, target, f"{st.label}: {msg}")
                if hit:
                    yield hit
    # TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS: prove it on each fold's representative
    for f in _folds(ctx):
        conn = f.representative
        if conn.refused:
            continue
        session, policies = conn.session(conn.thing.name)
        for policy in policies:
            for st in policy.statements:
                if st.effect != Effect.DENY or st.resources is None:
                    continue
                for resource in st.resources:
                    prefix = fleet.arn(conn.thing.target, "topicfilter", "")
                    if not resource.startswith(prefix) or MQTT_WILDCARD.search(resource[len(prefix) :]):
                        continue
                    denied = resource[len(prefix) :]
                    if "${" in denied:
                        continue
                    own = evaluate([policy], Request("iot:Subscribe", resource), session)
                    if own.decision is not Decision.EXPLICIT_DENY:  # its conditions do not hold here
                        continue
                    topic = denied.replace("*", "x").replace("?", "x")
                    receive = evaluate(
                        policies, Request("iot:Receive", fleet.arn(conn.thing.target, "topic", topic)), session
                    )
                    if not receive.allowed:
                        continue
                    for candidate in _mqtt_candidates(topic):
                        r = evaluate(policies, Request("iot:Subscribe", prefix + candidate), session)
                        if r.allowed:
                            others = f" (and {len(f.members) - 1:,} other thing(s))" if len(f.members) > 1 else ""
                            hit = _statement_hit(
                                ctx,
                                st,
                                conn.thing.target,
                                (
                                    f"{st.label} denies subscribing to '{denied}', but {conn.thing.name}{others} may "
                                    f"subscribe to '{candidate}' (allowed by {'; '.join(s.where for s in r.deciding)}) "
                                    f"and receive '{topic}' (allowed by {'; '.join(s.where for s in receive.deciding)}) "
                                    "(TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS)"
                                ),
                            )
                            if hit:
                                yield hit
                            break


# ------------------------------------------------------------------------------------------ certificates
def _key_problem(pem: str, rsa_min: int) -> str | None:
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

    from engine.pki import PemError, load_cert

    try:
        key = load_cert(pem).public_key()
    except PemError:
        return None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < rsa_min:
        return f"an RSA key of {key.key_size} bits (at least {rsa_min})"
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < WEAK_CURVE_BITS:
        return f"a weak elliptic curve {key.curve.name} ({key.curve.key_size} bits; at least {WEAK_CURVE_BITS})"
    if isinstance(key, dsa.DSAPublicKey):
        return f"a DSA key ({key.key_size} bits), which AWS IoT and Azure do not accept for new certificates"
    return None


@rule(
    "FL013",
    "certificate-key-quality",
    Level.ERROR,
    security_severity=7.0,
    rsa_min_bits=2048,
    summary="CA or device certificate with a weak key: RSA below 2048 bits, an elliptic curve below 256 bits, DSA "
    "(Device Defender: CA / device certificate key quality)",
    hint="issue a new certificate with RSA 2048+ or ECDSA P-256/P-384 and rotate the devices to it",
)
def certificate_key_quality(ctx: LintContext, options: Mapping[str, Any]) -> Iterator[Hit]:
    for doc in ctx.docs:
        for pem in ctx.certificates(doc):
            problem = _key_problem(pem.info.pem, int(options["rsa_min_bits"]))
            if problem:
                what = "CA certificate" if pem.info.is_ca else "certificate"
                yield Hit(doc, pem.path, f"{what} CN={pem.info.subject_cn} has {problem}")


@rule(
    "FL014",
    "certificate-age",
    Level.WARNING,
    security_severity=4.0,
    days=365,
    default_on=False,
    summary="device certificate older than N days (option: days, default 365; off unless selected or "
    "configured, as the maximum age is the organisation's policy) (Device Defender: device certificate age)",
    hint="rotate long-lived device certificates: issue a new one, declare it beside the old, then retire the old",
)
def certificate_age(ctx: LintContext, options: Mapping[str, Any]) -> Iterator[Hit]:
    days = int(options["days"])
    for doc in ctx.docs:
        for pem in ctx.certificates(doc):
            if pem.info.is_ca:
                continue
            age = (ctx.now - pem.info.not_before).days
            if age >= days:
                yield Hit(
                    doc,
                    pem.path,
                    f"certificate CN={pem.info.subject_cn} was issued on "
                    f"{pem.info.not_before:%Y-%m-%d}, {age} day(s) ago (threshold {days})",
                )


@rule(
    "FL015",
    "revoked-ca-active-certificates",
    Level.ERROR,
    security_severity=8.0,
    summary="a CA certificate declared INACTIVE or REVOKED while device certificates it issued stay ACTIVE "
    "(Device Defender: revoked CA certificate still active / intermediate CA revoked for active device "
    "certificates)",
    hint="set the device certificates the CA issued to INACTIVE or REVOKED (or move them to a new CA) in the "
    "same change that retires the CA",
)
def revoked_ca_active(ctx: LintContext, options: Mapping[str, Any]) -> Iterator[Hit]:
    from engine.pki import issued_by

    for ca_doc in ctx.of(AWS, "CACertificate"):
        status = str(ca_doc.spec.get("status", "ACTIVE"))
        if status == "ACTIVE":
            continue
        ca_info = ctx.certificate(ca_doc, ca_doc.spec.get("certificatePem"))
        active = []
        for doc in ctx.of(AWS, "Certificate"):
            if doc.target != ca_doc.target or str(doc.spec.get("status", "ACTIVE")) != "ACTIVE":
                continue
            info = ctx.certificate(doc, doc.spec.get("certificatePem"))
            if doc.spec.get("caCertificate") == ca_doc.name or (info and ca_info and issued_by(info.pem, ca_info.pem)):
                active.append(doc)
        if active:
            names = ", ".join(d.name for d in active)
            yield Hit(
                ca_doc,
                ("spec", "status"),
                f"CA certificate '{ca_doc.name}' is {status}, but "
                f"{len(active)} device certificate(s) it issued are ACTIVE: {names}",
            )
            for d in active:
                yield Hit(
                    d, ("spec", "status"), f"certificate '{d.name}' is ACTIVE, but its CA '{ca_doc.name}' is {status}"
                )


@rule(
    "FL016",
    "revoked-certificate-attached",
    Level.ERROR,
    security_severity=7.0,
    summary="a REVOKED device certificate still attached to a thing or still carrying policies (Device "
    "Defender: revoked device certificate still active)",
    hint="detach the revoked certificate from its things and policies (remove it from `principals` and its "
    "`policies`), so that reactivating it cannot restore access",
)
def revoked_certificate_attached(ctx: LintContext, options: Mapping[str, Any]) -> Iterator[Hit]:
    fleet = ctx.authz
    for (target, name), cert in sorted(fleet.certificates.items()):
        if cert.status != "REVOKED":
            continue
        things = fleet.attached.get((target, name), ())
        if not things and not cert.policies:
            continue
        doc = ctx.doc_for(AWS, "Certificate", name, target)
        if doc is None:
            continue
        parts = ([f"attached to {len(things)} thing(s): {', '.join(things)}"] if things else []) + (
            [f"carries policies {', '.join(cert.policies)}"] if cert.policies else []
        )
        yield Hit(doc, ("spec", "status"), f"certificate '{name}' is REVOKED but still " + " and ".join(parts))


# ------------------------------------------------------------------------------------ device ↔ cloud
@rule(
    "FL017",
    "device-cloud-crosscheck",
    Level.WARNING,
    security_severity=5.0,
    summary="a device's configuration cannot reach its cloud identity: certificate CN not the thing name or "
    "registration id, broker not the Target's endpoint, wrong TLS port, CA slot not holding the root the "
    "endpoint presents, empty slot referenced (the checks `plan --dumps` warns about)",
    hint="fix the DeviceConfig values (broker, client id, CA slot) or the cloud identity so they agree; "
    "cross-region brokers are FL009",
)
def device_cloud_crosscheck(ctx: LintContext, options: Mapping[str, Any]) -> Iterator[Hit]:
    from engine.diagnostics import Source
    from engine.providers.device.crosscheck import FindingCode
    from engine.providers.device.fleetcheck import device_findings

    if not any(d.group == "device.fleetctl.io" for d in ctx.docs):
        return
    configs = ctx.of("device.fleetctl.io", "DeviceConfig")
    for f in device_findings(ctx.fleet):
        if f.code in (FindingCode.CROSS_REGION, FindingCode.CA_UNVERIFIED):
            continue  # FL009 reports the endpoint in another region; "cannot tell" (no dump) is no defect
        source = _parse_source(f.source, Source)
        doc = next(
            (
                d
                for d in configs
                if source and d.doc.file == source.file and d.source(("metadata", "name")).line == source.line
            ),
            None,
        ) or (configs[0] if configs else None)
        if doc is None:
            continue
        where = ".".join(f.path)
        yield Hit(
            doc,
            ("spec",),
            f"{f.address}: {f.message}" + (f" ({where})" if where else "") + f" [cross-check {f.code.value}]",
            source=source,
        )


def _parse_source(text: str, cls: Any) -> Any:
    m = re.match(r"^(.*):(\d+):(\d+)$", text or "")
    return cls(m.group(1), int(m.group(2)), int(m.group(3))) if m else None


# ------------------------------------------------------------------------------------------------- azure
def _key_refs(value: Any, base: PathT) -> Iterator[tuple[PathT, str]]:
    for path, item in walk(value, base):
        key = path[-1] if isinstance(path[-1], str) else ""
        if (
            isinstance(item, dict)
            and len(item) == 1
            and next(iter(item)) in ("env", "secretRef", "file")
            and "key" in key.lower()
        ):
            source, ref = next(iter(item.items()))
            yield path, f"{source}:{ref}"


def _symmetric(doc: ManifestDoc) -> PathT | None:
    if doc.is_(AZURE, "Device"):
        auth = doc.spec.get("authentication")
        if isinstance(auth, dict) and auth.get("type") == "symmetricKey":
            return ("spec", "authentication", "type")
    if doc.is_(AZURE, "Enrollment", "EnrollmentGroup"):
        att = doc.spec.get("attestation")
        if isinstance(att, dict) and "symmetricKey" in att:
            return ("spec", "attestation", "symmetricKey")
    return None


@rule(
    "FL018",
    "azure-symmetric-key",
    Level.NOTE,
    security_severity=3.0,
    default_on=False,
    summary="an IoT Hub device or DPS enrollment authenticates with a symmetric key, not an X.509 certificate "
    "(off unless selected: the u-blox note's symmetric-key setup is a supported choice)",
    hint="prefer X.509 (x509CA with a verified CA, or a DPS enrollment group over a CA): a symmetric key is a "
    "shared secret the service holds too, and an enrollment group key derives every device's key",
)
def azure_symmetric_key(ctx: LintContext, options: Mapping[str, Any]) -> Iterator[Hit]:
    for doc in ctx.docs:
        path = _symmetric(doc)
        if path is not None:
            yield Hit(doc, path, f"{doc.kind} '{doc.name}' uses symmetric-key attestation")


@rule(
    "FL019",
    "azure-enrollment-group-key-reuse",
    Level.ERROR,
    security_severity=8.0,
    summary="a DPS enrollment group's symmetric key is also used by another enrollment group, enrollment or device",
    hint="give each enrollment group its own key, and never give a device the group key: devices get keys "
    "derived from it (HMAC-SHA256 of the registration id), so whoever holds the group key can "
    "register as any device of the group",
)
def azure_enrollment_group_key_reuse(ctx: LintContext, options: Mapping[str, Any]) -> Iterator[Hit]:
    users: dict[str, list[tuple[ManifestDoc, PathT]]] = defaultdict(list)
    groups: set[str] = set()
    for doc in ctx.docs:
        if not doc.is_(AZURE, "EnrollmentGroup", "Enrollment", "Device"):
            continue
        for section in ("attestation", "authentication"):
            value = doc.spec.get(section)
            if isinstance(value, dict):
                for path, ref in _key_refs(value, ("spec", section)):
                    users[ref].append((doc, path))
                    if doc.kind == "EnrollmentGroup":
                        groups.add(ref)
    for ref in sorted(groups):
        holders = users[ref]
        if len({(d.kind, d.name) for d, _ in holders}) < 2:
            continue
        names = ", ".join(sorted({f"{d.kind} {d.name}" for d, _ in holders}))
        for doc, path in holders:
            yield Hit(
                doc,
                path,
                f"the enrollment-group key {{{ref.replace(':', ': ', 1)}}} is used by "
                f"{len({(d.kind, d.name) for d, _ in holders})} documents ({names})",
            )


def _verified_hub_cas(ctx: LintContext, target: str | None) -> dict[str, Any]:
    out = {}
    for doc in ctx.of(AZURE, "HubCertificate"):
        if doc.target == target and doc.spec.get("verificationCertificatePem") is not None:
            out[doc.name] = ctx.certificate(doc, doc.spec.get("certificatePem"))
    return out


@rule(
    "FL020",
    "azure-unverified-ca",
    Level.WARNING,
    security_severity=6.0,
    summary="an X.509 (x509CA) device or DPS enrollment group relies on a CA the fleet does not declare as "
    "verified (a HubCertificate with its proof-of-possession certificate)",
    hint="declare the CA as a HubCertificate with verificationCertificatePem (proof of possession), and "
    "reference it (caCertificate)",
)
def azure_unverified_ca(ctx: LintContext, options: Mapping[str, Any]) -> Iterator[Hit]:
    from engine.pki import issued_by

    for doc in ctx.of(AZURE, "Device"):
        auth = doc.spec.get("authentication")
        if not isinstance(auth, dict) or auth.get("type") != "x509CA":
            continue
        verified = _verified_hub_cas(ctx, doc.target)
        named = auth.get("caCertificate")
        if isinstance(named, str):
            if named not in verified:
                yield Hit(
                    doc,
                    ("spec", "authentication", "caCertificate"),
                    f"device '{doc.name}' uses CA '{named}', which is not declared as a verified HubCertificate",
                )
            continue
        info = ctx.certificate(doc, auth.get("certificatePem"))
        if info is None or not any(ca and issued_by(info.pem, ca.pem) for ca in verified.values()):
            yield Hit(
                doc,
                ("spec", "authentication"),
                f"x509CA device '{doc.name}': no verified HubCertificate "
                "declared for its target issued its certificate",
            )
    for doc in ctx.of(AZURE, "EnrollmentGroup"):
        att = doc.spec.get("attestation")
        x509 = att.get("x509") if isinstance(att, dict) else None
        if not isinstance(x509, dict):
            continue
        verified = _verified_hub_cas(ctx, doc.target)
        for key in ("caCertificate", "secondaryCaCertificate"):
            named = x509.get(key)
            if isinstance(named, str) and named not in verified:
                yield Hit(
                    doc,
                    ("spec", "attestation", "x509", key),
                    f"enrollment group '{doc.name}' admits devices "
                    f"of CA '{named}', which is not declared as a verified HubCertificate",
                )
