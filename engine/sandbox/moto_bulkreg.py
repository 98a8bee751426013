"""AWS IoT bulk registration for the sandbox's moto, which has none of it (moto 5.x answers an HTML 500).

The five operations, with AWS's request and response shapes (botocore's service model):
StartThingRegistrationTask (templateBody, inputFileBucket, inputFileKey, roleArn → taskId),
DescribeThingRegistrationTask, ListThingRegistrationTasks (status filter, maxResults ≤ 250, nextToken),
StopThingRegistrationTask and ListThingRegistrationTaskReports (reportType RESULTS | ERRORS → resourceLinks).

What a task does, as the AWS developer guide describes bulk registration ("bulk-provisioning",
"provision-template"): it reads the newline-delimited JSON input file from S3 (moto's S3, served by the same
server), one line of template parameters per device, and provisions each line with the provisioning template
(Parameters with defaults; Ref, Fn::Join, Fn::Select, Fn::Split, Fn::If and Conditions with Fn::Equals, Fn::Not,
Fn::And, Fn::Or; resources AWS::IoT::Thing with ThingName, AttributePayload, ThingTypeName, ThingGroups and
OverrideSettings; AWS::IoT::Certificate with exactly one of CertificateSigningRequest, CertificateId or
CertificatePem (+ CACertificatePem: a device certificate whose CA is registered with AWS IoT), and Status;
AWS::IoT::Policy with PolicyName and/or PolicyDocument, attached to the certificate). It runs asynchronously on a
thread of its own; only one task runs at a time per account (AWS: "Only one bulk registration operation task
can run at a time (per account)"), a second Start is refused with InvalidRequestException (the only client
error StartThingRegistrationTask documents). Each line is all or nothing: every check is made before the first
change. When the task ends, the RESULTS and ERRORS reports are written into the input bucket under
`thing-registration-tasks/TASK/`, at most REPORT_LINES lines per object, and ListThingRegistrationTaskReports
links to them (`http://HOST/BUCKET/KEY`, path style, on the endpoint the caller used).

Sandbox choices where AWS documents nothing (each one named, none relied on silently):
- report lines: RESULTS `{"referenceId": "N", "response": {"CertificatePem": ..., "ResourceArns": {"thing": ARN,
  "certificate": ARN, POLICY_LOGICAL_NAME: ARN}}}`, ERRORS `{"referenceId": "N", "errorCode": ..., "errorMessage":
  ...}`, N the 0-based line offset of the input file;
- an existing thing is left as it is unless OverrideSettings says REPLACE, MERGE or FAIL per property;
- a Certificate given by CertificateId changes status only when the template gives Status;
- a template may hold a Certificate without a Thing.

Pacing (`configure(pace=True)`, set by `fleetctl sandbox up --quota-faithful`): AWS says bulk registration
"calls other AWS IoT control plane APIs" that "might exceed the AWS IoT Throttling Quotas". A paced task takes,
for every line, a token per internal operation from per-API token buckets at the default quotas
(engine/ratelimit.py AWS_IOT_QUOTAS, FLEETCTL_QUOTAS-style overrides): CreateThing, AddThingToThingGroup per
group, RegisterCertificate / CreateCertificateFromCsr / UpdateCertificate (a status change of an existing
certificate), AttachPolicy per policy (+ CreatePolicy), AttachThingPrincipal. Its buckets are its own: the
quota proxy's (which paces the client's calls) are in another process, so a client calling CreateThing while a
task runs would get the quota twice over; fleetctl makes no such calls while its task runs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import quote

REPORT_LINES = 10_000
REPORT_PREFIX = "thing-registration-tasks"
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
THING_NAME = re.compile(r"^[a-zA-Z0-9:_-]{1,128}$")
RESOURCE_TYPES = ("AWS::IoT::Thing", "AWS::IoT::Certificate", "AWS::IoT::Policy")
OVERRIDES = {
    "AttributePayload": ("MERGE", "REPLACE", "DO_NOTHING", "FAIL"),
    "ThingTypeName": ("REPLACE", "DO_NOTHING", "FAIL"),
    "ThingGroups": ("MERGE", "REPLACE", "DO_NOTHING", "FAIL"),
}
ACTIVE_STATES = ("InProgress", "Cancelling")

_pacer: Any = None  # engine.ratelimit.RateLimiter when paced; None: as fast as moto goes


def configure(*, pace: bool, quotas: Mapping[str, float] | None = None) -> None:
    """Pace the tasks' internal operations at the per-API quotas (AWS's defaults, `quotas` raised or lowered:
    {"CreateThing": 50}), or not at all. Applies to the lines processed from now on, in every task."""
    global _pacer
    if not pace:
        _pacer = None
        return
    from engine.quotas import AWS_DEFAULT, AWS_IOT_QUOTAS, with_overrides
    from engine.ratelimit import RateLimiter

    _pacer = RateLimiter(with_overrides(AWS_IOT_QUOTAS, dict(quotas or {})), default=AWS_DEFAULT)


def pacing() -> dict[str, Any] | None:
    """The pacing buckets' figures (None when unpaced): what the benchmarks report."""
    return _pacer.stats() if _pacer is not None else None


class LineError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _error(kind: str, message: str, status: int = 400) -> Exception:
    from moto.core.exceptions import JsonRESTError

    exc = JsonRESTError(kind, message)
    exc.code = status
    return exc


# ---------------------------------------------------------------------------------------------- templates
def _conditions(template: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    raw = template.get("Conditions") or {}

    def cond(node: Any) -> bool:
        if isinstance(node, dict) and len(node) == 1:
            ((fn, arg),) = node.items()
            if fn == "Condition":
                if arg not in out:
                    out[arg] = cond(raw[arg]) if arg in raw else _fail(f"unknown condition {arg}")
                return out[arg]
            if fn == "Fn::Equals":
                a, b = (_resolve(x, params, out) for x in arg)
                return a == b
            if fn == "Fn::Not":
                return not cond(arg[0])
            if fn == "Fn::And":
                return all(cond(x) for x in arg)
            if fn == "Fn::Or":
                return any(cond(x) for x in arg)
        raise LineError(
            "InvalidRequestException", f"a condition must be Fn::Equals, Fn::Not, Fn::And or Fn::Or: {node}"
        )

    for name, node in raw.items():
        if name not in out:
            out[name] = cond(node)
    return out


def _fail(message: str) -> Any:
    raise LineError("InvalidRequestException", message)


def _resolve(node: Any, params: Mapping[str, str], conds: Mapping[str, bool]) -> Any:
    if isinstance(node, dict):
        if len(node) == 1:
            ((fn, arg),) = node.items()
            if fn == "Ref":
                if arg not in params:
                    raise LineError("InvalidRequestException", f"the template's parameter {arg} has no value")
                return params[arg]
            if fn == "Fn::Join":
                sep, items = arg
                return str(sep).join(str(x) for x in _resolve(items, params, conds))
            if fn == "Fn::Select":
                index, items = arg
                values = _resolve(items, params, conds)
                return values[int(_resolve(index, params, conds))]
            if fn == "Fn::Split":
                sep, text = arg
                return str(_resolve(text, params, conds)).split(str(sep))
            if fn == "Fn::If":
                name, then, other = arg
                if name not in conds:
                    raise LineError("InvalidRequestException", f"Fn::If names an unknown condition {name}")
                return _resolve(then if conds[name] else other, params, conds)
        return {k: _resolve(v, params, conds) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, params, conds) for v in node]
    return node


def parse_template(body: str) -> dict[str, Any]:
    """The template as StartThingRegistrationTask accepts it, or InvalidRequestException."""
    try:
        template = json.loads(body)
    except (TypeError, ValueError):
        raise _error("InvalidRequestException", "templateBody is not valid JSON") from None
    resources = template.get("Resources") if isinstance(template, dict) else None
    if not isinstance(resources, dict) or not resources:
        raise _error("InvalidRequestException", "templateBody has no Resources")
    kinds = [r.get("Type") if isinstance(r, dict) else None for r in resources.values()]
    unknown = sorted({str(k) for k in kinds if k not in RESOURCE_TYPES})
    if unknown:
        raise _error(
            "InvalidRequestException",
            f"unsupported resource type(s) {', '.join(unknown)}; a provisioning "
            f"template declares {', '.join(RESOURCE_TYPES)}",
        )
    for kind in RESOURCE_TYPES[:2]:
        if kinds.count(kind) > 1:
            raise _error("InvalidRequestException", f"a provisioning template declares at most one {kind}")
    if "AWS::IoT::Policy" in kinds and "AWS::IoT::Certificate" not in kinds:
        raise _error(
            "InvalidRequestException",
            "AWS::IoT::Policy resources are attached to the template's certificate, and it declares none",
        )
    for params in (template.get("Parameters") or {}).values():
        if not isinstance(params, dict) or params.get("Type", "String") != "String":
            raise _error("InvalidRequestException", "template parameters are of Type String")
    return template


def _params(template: Mapping[str, Any], line: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, decl in (template.get("Parameters") or {}).items():
        if name in line:
            if not isinstance(line[name], str):
                raise LineError("InvalidRequestException", f"parameter {name} must be a string")
            out[name] = line[name]
        elif "Default" in decl:
            out[name] = str(decl["Default"])
    return out


# ---------------------------------------------------------------------------------------------- one line
@dataclass
class _Line:
    """One input line resolved against the template: the resources' properties, nothing applied yet."""

    thing: dict[str, Any] | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    cert: dict[str, Any] | None = None
    policies: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def resolve_line(template: Mapping[str, Any], line: Mapping[str, Any]) -> _Line:
    params = _params(template, line)
    conds = _conditions(template, params)
    out = _Line()
    for logical, res in template["Resources"].items():
        if res.get("Condition") and not conds.get(res["Condition"], False):
            continue
        props = _resolve(res.get("Properties") or {}, params, conds)
        if res["Type"] == "AWS::IoT::Thing":
            out.thing = props
            out.overrides = {k: str(v).upper() for k, v in (res.get("OverrideSettings") or {}).items()}
            for key, value in out.overrides.items():
                if value not in OVERRIDES.get(key, ()):
                    raise LineError("InvalidRequestException", f"OverrideSettings.{key} cannot be {value}")
        elif res["Type"] == "AWS::IoT::Certificate":
            out.cert = props
        else:
            out.policies.append((logical, props))
    return out


def _operations(b: Any, ln: _Line) -> list[str]:
    """The control-plane operations a line makes, as AWS's quotas count them (what a paced task waits for)."""
    ops: list[str] = []
    if ln.thing is not None:
        ops.append("CreateThing")
        ops += ["AddThingToThingGroup"] * len(ln.thing.get("ThingGroups") or [])
    if ln.cert is not None:
        if ln.cert.get("CertificatePem"):
            ops.append("RegisterCertificate")
        elif ln.cert.get("CertificateSigningRequest"):
            ops.append("CreateCertificateFromCsr")
        else:
            current = b.certificates.get(str(ln.cert.get("CertificateId")))
            if ln.cert.get("Status") and current is not None and current.status != ln.cert["Status"]:
                ops.append("UpdateCertificate")
        for _, props in ln.policies:
            if props.get("PolicyDocument") and _policy_name(props) not in b.policies:
                ops.append("CreatePolicy")
            ops.append("AttachPolicy")
        if ln.thing is not None:
            ops.append("AttachThingPrincipal")
    return ops


def _policy_name(props: Mapping[str, Any]) -> str:
    if props.get("PolicyName"):
        return str(props["PolicyName"])
    doc = props.get("PolicyDocument")
    text = doc if isinstance(doc, str) else json.dumps(doc, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _registered_ca(b: Any, pem: str, ca_pem: str | None) -> Any:
    """The registered CA that issued `pem` (the one `ca_pem` names when given), or a line error."""
    from cryptography import x509

    try:
        leaf = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise LineError("CertificateValidationException", "CertificatePem is not a valid PEM certificate") from None
    candidates = list(b.ca_certificates.values())
    if ca_pem:
        wanted = ca_pem.strip()
        candidates = [ca for ca in candidates if ca.certificate_pem.strip() == wanted]
        if not candidates:
            raise LineError(
                "ResourceNotFoundException", "CACertificatePem is not a CA certificate registered with AWS IoT"
            )
    for ca in candidates:
        try:
            issuer = x509.load_pem_x509_certificate(ca.certificate_pem.encode())
            if leaf.issuer == issuer.subject:
                leaf.verify_directly_issued_by(issuer)
                return ca
        except Exception:  # noqa: BLE001 - a bad signature or an unparsable CA: not this one
            continue
    raise LineError(
        "CertificateValidationException",
        "the certificate was not issued by a CA certificate "
        "registered with AWS IoT (bulk registration registers device "
        "certificates of registered CAs)",
    )


def _cert_id(pem: str) -> str:
    from moto.iot.models import FakeCertificate

    # moto's own rule, on a bare instance; cast: moto's BaseModel.__new__ is annotated as returning BaseModel
    return cast(FakeCertificate, FakeCertificate.__new__(FakeCertificate)).compute_cert_id(pem)


def provision(b: Any, ln: _Line) -> dict[str, Any]:
    """Check every resource of the line, then create/update them; the RESULTS `response`. Caller holds the lock."""
    arns: dict[str, str] = {}
    thing = group_objs = thing_type = None
    prefix = f"arn:aws:iot:{b.region_name}:{b.account_id}"
    # ---- checks (nothing changes before all pass)
    if ln.thing is not None:
        name = str(ln.thing.get("ThingName") or "")
        if not THING_NAME.match(name):
            raise LineError("InvalidRequestException", f"ThingName {name!r} is not a valid thing name")
        attrs = ln.thing.get("AttributePayload") or {}
        if not isinstance(attrs, dict) or not all(isinstance(v, str) for v in attrs.values()):
            raise LineError("InvalidRequestException", "AttributePayload must map names to strings")
        existing = b.things.get(f"{prefix}:thing/{name}")
        override = (
            (lambda key: ln.overrides.get(key, "DO_NOTHING")) if existing is not None else (lambda key: "REPLACE")
        )
        if existing is not None and "FAIL" in (
            override("AttributePayload"),
            override("ThingTypeName"),
            override("ThingGroups"),
        ):
            raise LineError("ResourceAlreadyExistsException", f"thing {name} already exists")
        type_name = ln.thing.get("ThingTypeName")
        if type_name and override("ThingTypeName") == "REPLACE":
            thing_type = next((t for t in b.thing_types.values() if t.thing_type_name == type_name), None)
            if thing_type is None:
                raise LineError("ResourceNotFoundException", f"thing type {type_name} does not exist")
            if thing_type.metadata.get("deprecated"):
                raise LineError("InvalidRequestException", f"thing type {type_name} is deprecated")
        groups = [str(g) for g in ln.thing.get("ThingGroups") or []]
        if override("ThingGroups") != "DO_NOTHING":
            group_objs = []
            for g in groups:
                found = next((x for x in b.thing_groups.values() if x.thing_group_name == g), None)
                if found is None:
                    raise LineError("ResourceNotFoundException", f"thing group {g} does not exist")
                group_objs.append(found)
    cert: Any = None  # moto's FakeCertificate / FakeCaCertificate: the backend `b` is untyped here
    ca: Any = None
    status = None
    if ln.cert is not None:
        given = [k for k in ("CertificateSigningRequest", "CertificateId", "CertificatePem") if ln.cert.get(k)]
        if len(given) != 1:
            raise LineError(
                "InvalidRequestException",
                "a Certificate resource gives exactly one of CertificateSigningRequest, CertificateId, CertificatePem",
            )
        status = ln.cert.get("Status")
        if status is not None and status not in ("ACTIVE", "INACTIVE"):
            raise LineError("InvalidRequestException", f"certificate Status must be ACTIVE or INACTIVE, not {status}")
        if given == ["CertificateId"]:
            cert = b.certificates.get(str(ln.cert["CertificateId"]))
            if cert is None:
                raise LineError("ResourceNotFoundException", f"certificate {ln.cert['CertificateId']} does not exist")
        elif given == ["CertificatePem"]:
            ca = _registered_ca(b, str(ln.cert["CertificatePem"]), ln.cert.get("CACertificatePem"))
            if _cert_id(str(ln.cert["CertificatePem"])) in b.certificates:
                raise LineError(
                    "ResourceAlreadyExistsException", "The certificate is already provisioned or registered"
                )
        else:
            from cryptography import x509

            try:
                x509.load_pem_x509_csr(str(ln.cert["CertificateSigningRequest"]).encode())
            except ValueError:
                raise LineError("InvalidRequestException", "CertificateSigningRequest is not a valid PEM CSR") from None
    policies = []
    for logical, props in ln.policies:
        pname = _policy_name(props)
        if pname not in b.policies and not props.get("PolicyDocument"):
            raise LineError("ResourceNotFoundException", f"policy {pname} does not exist")
        policies.append((logical, pname, props))
    # ---- changes
    if ln.thing is not None:
        existing = b.things.get(f"{prefix}:thing/{name}")
        if existing is None:
            thing = b.create_thing(
                name, thing_type.thing_type_name if thing_type else None, {"attributes": dict(attrs)}
            )
        else:
            thing, changed = existing, False
            how = ln.overrides.get("AttributePayload", "DO_NOTHING")
            if how in ("REPLACE", "MERGE"):
                merged = dict(attrs) if how == "REPLACE" else {**thing.attributes, **attrs}
                changed |= merged != thing.attributes
                thing.attributes = merged
            if ln.overrides.get("ThingTypeName") == "REPLACE" and thing.thing_type is not thing_type:
                thing.thing_type, changed = thing_type, True
            if ln.overrides.get("ThingGroups") == "REPLACE":
                for g in b.thing_groups.values():
                    if thing.arn in g.things and g not in (group_objs or []):
                        del g.things[thing.arn]
            thing.version += int(changed)
        for g in group_objs or []:
            g.things[thing.arn] = thing
        arns["thing"] = thing.arn
    if ln.cert is not None:
        if ln.cert.get("CertificatePem"):
            cert = b.register_certificate(ln.cert["CertificatePem"], ca.certificate_pem, False, status or "ACTIVE")
            cert.ca_certificate_id = ca.certificate_id
        elif ln.cert.get("CertificateSigningRequest"):
            cert = b.create_certificate_from_csr(ln.cert["CertificateSigningRequest"], set_as_active=False)
            cert.status = status or "ACTIVE"
        elif status is not None:
            cert.status = status
        arns["certificate"] = cert.arn
        for logical, pname, props in policies:
            policy = b.policies.get(pname)
            if policy is None:
                doc = props["PolicyDocument"]
                policy = b.create_policy(pname, doc if isinstance(doc, str) else json.dumps(doc))
            b.principal_policies[(cert.arn, policy.name)] = (cert, policy)
            arns[logical] = policy.arn
        if thing is not None:
            b.principal_things[(cert.arn, thing.thing_name)] = (cert, thing)
    response: dict[str, Any] = {"ResourceArns": arns}
    if cert is not None:
        response["CertificatePem"] = cert.certificate_pem
    return response


# ---------------------------------------------------------------------------------------------- tasks
@dataclass
class Task:
    task_id: str
    template: dict[str, Any]
    template_body: str
    bucket: str
    key: str
    role_arn: str
    lines: list[str]
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)
    status: str = "InProgress"
    message: str = ""
    success: int = 0
    failure: int = 0
    done: int = 0
    reports: dict[str, list[str]] = field(default_factory=lambda: {"RESULTS": [], "ERRORS": []})
    stop: threading.Event = field(default_factory=threading.Event)

    def describe(self) -> dict[str, Any]:
        total = len(self.lines)
        return {
            "taskId": self.task_id,
            "creationDate": self.created,
            "lastModifiedDate": self.modified,
            "templateBody": self.template_body,
            "inputFileBucket": self.bucket,
            "inputFileKey": self.key,
            "roleArn": self.role_arn,
            "status": self.status,
            "message": self.message,
            "successCount": self.success,
            "failureCount": self.failure,
            "percentageProgress": 100 if not total else int(100 * self.done / total),
        }


def tasks_of(backend: Any) -> dict[str, Task]:
    return backend.__dict__.setdefault("_fleetctl_registration_tasks", {})


def _s3(account_id: str) -> Any:
    from moto.s3.models import s3_backends

    return s3_backends[account_id]["aws"]


def _current(backend: Any) -> bool:
    from moto.iot.models import iot_backends

    try:
        return iot_backends[backend.account_id][backend.region_name] is backend
    except KeyError:
        return False


def _run(backend: Any, task: Task, lock: Any) -> None:
    """The task's thread: every line in order, paced when configured, then the reports."""
    results: list[str] = []
    errors: list[str] = []
    for index, raw in enumerate(task.lines):
        if task.stop.is_set() or not _current(backend):  # stopped, or the sandbox was reset under it
            break
        try:
            try:
                line = json.loads(raw)
            except ValueError:
                raise LineError("InvalidRequestException", f"line {index} of the input file is not JSON") from None
            if not isinstance(line, dict):
                raise LineError("InvalidRequestException", f"line {index} of the input file is not a JSON object")
            resolved = resolve_line(task.template, line)
            pacer = _pacer
            if pacer is not None:
                for op in _operations(backend, resolved):
                    pacer.acquire(op)
            with lock:
                try:
                    response = provision(backend, resolved)
                except LineError:
                    raise
                except Exception as exc:  # noqa: BLE001 - moto's own errors (ResourceNotFound, ...) per line
                    raise LineError(
                        getattr(exc, "error_type", None) or type(exc).__name__,
                        getattr(exc, "message", None) or str(exc),
                    ) from exc
            results.append(json.dumps({"referenceId": str(index), "response": response}))
            task.success += 1
        except LineError as exc:
            errors.append(json.dumps({"referenceId": str(index), "errorCode": exc.code, "errorMessage": exc.message}))
            task.failure += 1
        task.done += 1
        task.modified = time.time()
    if not _current(backend):
        return
    s3 = _s3(backend.account_id)
    for kind, rows in (("RESULTS", results), ("ERRORS", errors)):
        for part, start in enumerate(range(0, len(rows), REPORT_LINES)):
            key = f"{REPORT_PREFIX}/{task.task_id}/{kind.lower()}-{part:04d}.json"
            try:
                s3.put_object(task.bucket, key, ("\n".join(rows[start : start + REPORT_LINES]) + "\n").encode())
            except Exception as exc:  # noqa: BLE001 - the bucket went away: the task fails, as AWS's would
                task.status, task.message = "Failed", f"cannot write the {kind} report to s3://{task.bucket}: {exc}"
                task.modified = time.time()
                return
            task.reports[kind].append(key)
    task.status = "Cancelled" if task.stop.is_set() else "Completed"
    task.modified = time.time()


def _page(items: list[Any], size: Any, token: Any) -> tuple[list[Any], str | None]:
    size = int(size or 250)
    if not 1 <= size <= 250:
        raise _error("InvalidRequestException", "maxResults must be between 1 and 250")
    start = int(base64.b64decode(token).decode().split(":", 1)[1]) if token else 0
    end = start + size
    return items[start:end], (base64.b64encode(f"bulkreg:{end}".encode()).decode() if end < len(items) else None)


def install(IoTResponse: Any, ActionResult: Any, EmptyResult: Any, lock: Any) -> None:
    """Add the five operations to moto's IoTResponse (sandbox process only). `lock` serialises IoT actions."""

    def _task(self) -> Task:
        task = tasks_of(self.iot_backend).get(self._get_param("taskId") or self.path.rstrip("/").split("/")[2])
        if task is None:
            raise _error(
                "ResourceNotFoundException", f"thing registration task {self._get_param('taskId')} does not exist", 404
            )
        return task

    def start_thing_registration_task(self):
        b = self.iot_backend
        body, bucket, key, role = (
            self._get_param(k) for k in ("templateBody", "inputFileBucket", "inputFileKey", "roleArn")
        )
        if not bucket or not key or body is None:
            raise _error("InvalidRequestException", "templateBody, inputFileBucket and inputFileKey are required")
        if not role or len(role) < 20 or not ROLE_ARN.match(role):
            raise _error("InvalidRequestException", f"roleArn {role!r} is not an IAM role ARN")
        template = parse_template(body)
        from moto.iot.models import iot_backends

        for other in list(iot_backends[b.account_id].values()):
            running = [t for t in tasks_of(other).values() if t.status in ACTIVE_STATES]
            if running:
                raise _error(
                    "InvalidRequestException",
                    f"a bulk registration task is already in progress in this "
                    f"account ({running[0].task_id}); only one can run at a time",
                )
        try:
            obj = _s3(b.account_id).get_object(bucket, key)
        except Exception:  # noqa: BLE001 - MissingBucket
            obj = None
        if obj is None:
            raise _error("InvalidRequestException", f"cannot read the input file s3://{bucket}/{key} with role {role}")
        lines = [ln for ln in obj.value.decode("utf-8", "replace").splitlines() if ln.strip()]
        task = Task(str(uuid.uuid4()), template, body, bucket, key, role, lines)
        tasks_of(b)[task.task_id] = task
        threading.Thread(
            target=_run, args=(b, task, lock), name=f"registration-task-{task.task_id[:8]}", daemon=True
        ).start()
        return ActionResult({"taskId": task.task_id})

    def describe_thing_registration_task(self):
        return ActionResult(_task(self).describe())

    def list_thing_registration_tasks(self):
        status = self._get_param("status")
        ids = [t.task_id for t in tasks_of(self.iot_backend).values() if status in (None, t.status)]
        page, token = _page(ids, self._get_param("maxResults"), self._get_param("nextToken"))
        return ActionResult({"taskIds": page, "nextToken": token})

    def stop_thing_registration_task(self):
        task = _task(self)
        if task.status != "InProgress":
            raise _error("InvalidRequestException", f"task {task.task_id} is {task.status}, not InProgress")
        task.stop.set()
        task.status = "Cancelling"
        task.modified = time.time()
        return EmptyResult()

    def list_thing_registration_task_reports(self):
        task = _task(self)
        kind = self._get_param("reportType")
        if kind not in ("RESULTS", "ERRORS"):
            raise _error("InvalidRequestException", "reportType must be RESULTS or ERRORS")
        host = self.headers.get("Host") or "127.0.0.1"
        links = [f"http://{host}/{task.bucket}/{quote(k)}" for k in task.reports[kind]]
        page, token = _page(links, self._get_param("maxResults"), self._get_param("nextToken"))
        return ActionResult({"resourceLinks": page, "reportType": kind, "nextToken": token})

    for fn in (
        start_thing_registration_task,
        describe_thing_registration_task,
        list_thing_registration_tasks,
        stop_thing_registration_task,
        list_thing_registration_task_reports,
    ):
        setattr(IoTResponse, fn.__name__, fn)
