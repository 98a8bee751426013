"""AWS IoT bulk registration (StartThingRegistrationTask) for the initial provisioning of large batches.

With a Target's `aws.bulkRegistration` section, an apply wave's new things and new certificates are created by
registration tasks instead of per-device calls when at least `threshold` of them share a *shape* (one
provisioning template expresses them all: the same attribute names, number of groups, thing type or none,
certificate link or none; for certificates, the number of policies). Everything else in the wave, and every
wave without such a batch, keeps the per-call path. Per batch, `run_task`:

1. waits while another registration task runs (AWS runs one per account; at most `waitSeconds`, then it fails
   every change of the batch, naming the task), and runs the provider's own batches one after the other;
2. writes the JSON-lines input file to `s3://bucket/prefix...` — thing names, attributes, group names, thing
   types, certificate ids and statuses, public certificate PEMs, policy names: never a secret;
3. starts the task with the shape's template, journals its id (`task-started`: an apply killed while the task
   runs leaves it in the journal, and the next plan says so), polls DescribeThingRegistrationTask;
4. reads the RESULTS and ERRORS reports and maps every line back to its change (by the thing or certificate ARN
   of a result, else by the line's referenceId): a result is a success, an error line a failure of that change
   alone. A certificate that is already registered (an interrupted apply got that far) is completed by the
   per-call handler, which treats it as registered and converges its policies and status.

The result is what the per-call handlers make (`_thing_create`, `_cert_create` in provider.py): the thing with
its attributes plus the ownership marker attribute, its type and groups (OverrideSettings REPLACE/MERGE, so an
existing thing converges instead of being skipped), its certificate attached; a certificate with its CA, its
status and its policies. What a template cannot do is done with calls or not by a task at all:
- a certificate without a registered CA (RegisterCertificateWithoutCA): AWS's bulk registration registers
  device certificates "created with a CA certificate registered with AWS IoT" only, so those stay per call;
- a thing with more than one certificate (a template declares one certificate): per call;
- a thing whose certificate this apply did not create or update (its status is not known, and a template's
  Certificate resource sets one): the task creates the thing, then one AttachThingPrincipal call per thing;
- tags: fleetctl sets none on things or certificates (the marker is an attribute), so nothing is lost.

Throughput: AWS documents that bulk registration "calls other AWS IoT control plane APIs" subject to the same
throttling quotas (research/quotas.md §1.3), so a task is not faster than the paced per-call path; it makes O(1)
client calls instead of O(devices) and trades the per-device journal entries (begin/success with each request
id) for one begin/success per change around one task id. docs/performance.md §5 has the measured trade-off.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine import errors
from engine.model import Action, Change
from engine.providers.aws.kinds import MARKER_KEY, MARKER_VALUE

if TYPE_CHECKING:
    from engine.providers.aws.provider import AwsProvider

TEMPLATE_MAX = 10240  # StartThingRegistrationTask templateBody length
LINE_MAX = 256 * 1024  # research/quotas.md §1.3: at most 256K per input line
ACTIVE = ("InProgress", "Cancelling")
OP = "thing_registration_task"
OVERRIDES = {"AttributePayload": "REPLACE", "ThingTypeName": "REPLACE", "ThingGroups": "MERGE"}


@dataclass(frozen=True)
class BulkConfig:
    bucket: str
    role_arn: str
    prefix: str = "fleetctl/bulk-registration/"
    threshold: int = 1000
    poll_seconds: float = 2.0
    wait_seconds: float = 3600.0

    @classmethod
    def from_spec(cls, spec: Any) -> BulkConfig | None:
        """From the Target's `aws.bulkRegistration` (the pydantic model, or its JSON in a plan file)."""
        if spec is None:
            return None
        get: Callable[..., Any] = spec.get if isinstance(spec, Mapping) else lambda k, d=None: getattr(spec, k, d)
        return cls(
            bucket=get("bucket"),
            role_arn=get("roleArn"),
            prefix=get("prefix") or cls.prefix,
            threshold=int(get("threshold") or cls.threshold),
            poll_seconds=float(get("pollSeconds") or cls.poll_seconds),
            wait_seconds=float(cls.wait_seconds if get("waitSeconds") is None else get("waitSeconds")),
        )


# ---------------------------------------------------------------------------------------------- shapes (pure)
Shape = tuple[Any, ...]  # (template, its distinguishing parts...): the changes of one shape share a task


def shape(c: Change, statuses: Mapping[str, str]) -> Shape | None:
    """The template `c` fits, or None when a task cannot create it (it stays on the per-call path).
    `statuses`: certificate id → status of the certificates this apply created or updated."""
    if c.action is not Action.CREATE:
        return None
    d = c.desired
    if c.kind == "aws.Thing":
        principals = list(d.get("principals") or [])
        if len(principals) > 1:
            return None
        link = "none"
        if principals:
            cid = (c.inputs.get("certificateIds") or {}).get(principals[0])
            if not cid:
                return None
            link = "task" if cid in statuses else "call"
        return (
            "thing",
            bool(d.get("thingType")),
            tuple(sorted(d.get("attributes") or {})),
            len(d.get("groups") or []),
            link,
        )
    if c.kind == "aws.Certificate":
        if not c.inputs.get("caCertificatePem") or not c.inputs.get("certificatePem") or not d.get("certificateId"):
            return None
        return ("certificate", len(d.get("policies") or []))
    return None


def template(s: Shape) -> dict[str, Any]:
    """The provisioning template of a shape (parameters per line; the ownership marker is a literal)."""
    params: dict[str, Any] = {}

    def ref(name: str) -> dict[str, str]:
        params[name] = {"Type": "String"}
        return {"Ref": name}

    if s[0] == "thing":
        _, typed, keys, groups, link = s
        props: dict[str, Any] = {
            "ThingName": ref("ThingName"),
            "AttributePayload": {**{k: ref(f"A{i}") for i, k in enumerate(keys)}, MARKER_KEY: MARKER_VALUE},
        }
        if typed:
            props["ThingTypeName"] = ref("ThingTypeName")
        if groups:
            props["ThingGroups"] = [ref(f"G{i}") for i in range(groups)]
        resources: dict[str, Any] = {
            "thing": {"Type": "AWS::IoT::Thing", "Properties": props, "OverrideSettings": dict(OVERRIDES)}
        }
        if link == "task":
            resources["certificate"] = {
                "Type": "AWS::IoT::Certificate",
                "Properties": {"CertificateId": ref("CertificateId"), "Status": ref("CertificateStatus")},
            }
    else:
        resources = {
            "certificate": {
                "Type": "AWS::IoT::Certificate",
                "Properties": {
                    "CertificatePem": ref("CertificatePem"),
                    "CACertificatePem": ref("CACertificatePem"),
                    "Status": ref("Status"),
                },
            }
        }
        for i in range(s[1]):
            resources[f"policy{i}"] = {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": ref(f"P{i}")}}
    return {"Parameters": params, "Resources": resources}


def template_body(s: Shape) -> str:
    return json.dumps(template(s), sort_keys=True, separators=(",", ":"))


def line(c: Change, s: Shape, statuses: Mapping[str, str]) -> dict[str, str]:
    """The input-file line of one change: its template parameters (no secret: every value here is public)."""
    d = c.desired
    if s[0] == "thing":
        out = {"ThingName": c.address.name}
        attrs = d.get("attributes") or {}
        out.update({f"A{i}": str(attrs[k]) for i, k in enumerate(s[2])})
        if s[1]:
            out["ThingTypeName"] = d["thingType"]
        out.update({f"G{i}": g for i, g in enumerate(d.get("groups") or [])})
        if s[4] == "task":
            cid = c.inputs["certificateIds"][d["principals"][0]]
            out.update({"CertificateId": cid, "CertificateStatus": statuses[cid]})
        return out
    out = {
        "CertificatePem": c.inputs["certificatePem"],
        "CACertificatePem": c.inputs["caCertificatePem"],
        "Status": d.get("status", "ACTIVE"),
    }
    out.update({f"P{i}": p for i, p in enumerate(d.get("policies") or [])})
    return out


def batches(changes: Iterable[Change], cfg: BulkConfig, statuses: Mapping[str, str]) -> list[list[Change]]:
    """The registration tasks of one wave of one target: every shape with at least `threshold` changes whose
    template and lines fit AWS's limits, in address order; shapes in a deterministic order."""
    by_shape: dict[Shape, list[Change]] = {}
    for c in changes:
        s = shape(c, statuses)
        if s is not None:
            by_shape.setdefault(s, []).append(c)
    out = []
    for s in sorted(by_shape, key=repr):
        group = sorted(by_shape[s], key=lambda c: str(c.address))
        if len(group) < cfg.threshold or len(template_body(s)) > TEMPLATE_MAX:
            continue
        group = [c for c in group if len(json.dumps(line(c, s, statuses))) < LINE_MAX]
        if len(group) >= cfg.threshold:
            out.append(group)
    return out


def created_statuses(changes: Iterable[Change]) -> dict[str, str]:
    """Certificate id → the status apply gives it, for the certificate creates/updates of `changes`."""
    return {
        c.desired["certificateId"]: c.desired.get("status", "ACTIVE")
        for c in changes
        if c.kind == "aws.Certificate" and c.action is not Action.DELETE and c.desired.get("certificateId")
    }


# ---------------------------------------------------------------------------------------------- plan estimate (pure)
MAX_POLL = 30.0


def next_poll(progress: int, elapsed: float, cfg: BulkConfig) -> float:
    """Seconds until the next DescribeThingRegistrationTask: a quarter of the time the task's progress says is
    left (at most MAX_POLL, at least pollSeconds), so a long task costs tens of polls, not one per pollSeconds,
    and its end is seen within about pollSeconds."""
    if progress <= 0:
        return cfg.poll_seconds
    left = elapsed * (100 - progress) / progress
    return min(max(cfg.poll_seconds, MAX_POLL), max(cfg.poll_seconds, left / 4))


def polls(seconds: float, cfg: BulkConfig) -> int:
    """The DescribeThingRegistrationTask calls `next_poll` makes for a task of `seconds` (steady progress)."""
    t, n = 0.0, 1
    while t < seconds:
        t += next_poll(int(100 * t / seconds) if seconds else 100, t, cfg)
        n += 1
    return n


def client_calls(seconds: float, cfg: BulkConfig) -> int:
    """One task's client calls: two ListThingRegistrationTasks (InProgress, Cancelling), PutObject, Start, the
    polls, the two report listings and (about) one GetObject per report object."""
    return 6 + polls(seconds, cfg)


def estimate_note(
    waves: Sequence[Sequence[Change]],
    configs: Mapping[str, BulkConfig],
    calls: Callable[[Change], Mapping[str, int] | None],
    tps: Callable[[str], float],
) -> dict[str, Any] | None:
    """What the plan says about the bulk path of the targets in `configs`: the tasks apply will start (a wave's
    batches, as `batches` will cut them at apply), the changes they carry, and the client calls they make instead of
    the per-call path's; `line` is the sentence the plan prints."""
    if not configs:
        return None
    statuses: dict[str, str] = {}
    tasks = changes = per_call = client = 0
    seconds = 0.0
    for wave in waves:
        for target, cfg in sorted(configs.items()):
            mine = [c for c in wave if c.address.provider == "aws" and c.address.target == target]
            for batch in batches(mine, cfg, statuses):
                counted: Counter[str] = Counter()
                for c in batch:
                    counted.update(calls(c) or {})
                task_seconds = max([n / tps(api) for api, n in counted.items() if n] or [0.0])
                tasks += 1
                changes += len(batch)
                per_call += sum(counted.values())
                seconds += task_seconds
                client += client_calls(task_seconds, cfg) + sum(
                    1 for c in batch if (s := shape(c, statuses)) and s[-1] == "call"
                )
        statuses.update(created_statuses(wave))
    if not tasks:
        note: dict[str, Any] = {"tasks": 0, "threshold": min(c.threshold for c in configs.values())}
    else:
        note = {
            "tasks": tasks,
            "changes": changes,
            "clientCalls": client,
            "perCallCalls": per_call,
            "taskSeconds": round(seconds, 1),
            "threshold": min(c.threshold for c in configs.values()),
        }
    return {"path": "aws-bulk-registration", **note, "line": note_line(note)}


def note_line(note: Mapping[str, Any] | None) -> str:
    if not note:
        return ""
    if not note.get("tasks"):
        return (
            f"no apply wave has {note['threshold']} new things/certificates of one shape: bulk registration "
            "(aws.bulkRegistration) is not used"
        )
    return (
        f"{note['changes']} new thing(s)/certificate(s) by {note['tasks']} AWS bulk registration task(s) "
        f"(aws.bulkRegistration, threshold {note['threshold']}): ~{note['clientCalls']} client calls instead of "
        f"{note['perCallCalls']}, at the same quotas server-side, journaled per change around each task id"
    )


# ---------------------------------------------------------------------------------------------- apply
def _note(hook: Any, event: str, **fields: Any) -> None:
    """A journal entry about the task (through the batch's journal hook; no hook: not journaled)."""
    if hook is None:
        return
    try:
        hook(OP, event, None, None, **fields)
    except TypeError:  # a hook without extra fields
        hook(OP, event, None, None)


def _describe(p: AwsProvider, task_id: str) -> dict[str, Any]:
    return p.client.call("describe_thing_registration_task", taskId=task_id)


def _wait_for_others(p: AwsProvider, cfg: BulkConfig, hook: Any) -> None:
    running = [
        t for status in ACTIVE for t in p.client.pages("list_thing_registration_tasks", "taskIds", status=status)
    ]
    if not running:
        return
    _note(hook, "task-wait", taskIds=running, waitSeconds=cfg.wait_seconds)
    deadline = time.monotonic() + cfg.wait_seconds
    for task_id in running:
        while True:
            try:
                d = _describe(p, task_id)
            except errors.NotFound:
                break
            if d.get("status") not in ACTIVE:
                _note(
                    hook,
                    "task-ended",
                    taskId=task_id,
                    status=d.get("status"),
                    successCount=d.get("successCount"),
                    failureCount=d.get("failureCount"),
                    observed=True,
                )  # another apply's (or tool's) task
                break
            if time.monotonic() >= deadline:
                raise errors.Conflict(
                    f"AWS bulk registration task {task_id} (input s3://{d.get('inputFileBucket')}/"
                    f"{d.get('inputFileKey')}, {d.get('percentageProgress', 0)}% done) is still running after "
                    f"fleetctl waited {cfg.wait_seconds:g} s for it, and AWS runs one task at a time per account: "
                    f"re-run apply when it has ended (aws iot describe-thing-registration-task --task-id {task_id}), "
                    f"or stop it (aws iot stop-thing-registration-task)",
                    code="ThingRegistrationTaskInProgress",
                )
            time.sleep(min(cfg.poll_seconds, max(0.01, deadline - time.monotonic())))


def _start(p: AwsProvider, cfg: BulkConfig, body: str, key: str, hook: Any) -> str:
    for attempt in range(3):
        _wait_for_others(p, cfg, hook)
        try:
            task_id: str = p.client.call(
                "start_thing_registration_task",
                templateBody=body,
                inputFileBucket=cfg.bucket,
                inputFileKey=key,
                roleArn=cfg.role_arn,
            )["taskId"]
            return task_id
        except errors.Invalid as exc:
            if "in progress" not in str(exc) or attempt == 2:  # another task started since we looked
                raise
    raise AssertionError("unreachable")


def _reports(p: AwsProvider, task_id: str, kind: str) -> list[dict[str, Any]]:
    out = []
    for link in p.client.pages(
        "list_thing_registration_task_reports", "resourceLinks", taskId=task_id, reportType=kind
    ):
        for text in p.client.fetch_link(link).splitlines():
            if text.strip():
                try:
                    out.append(json.loads(text))
                except ValueError:
                    continue
    return out


def _key(c: Change) -> str:
    return c.address.name if c.kind == "aws.Thing" else str(c.desired.get("certificateId"))


def _arn_key(entry: Mapping[str, Any], kind: str) -> str | None:
    arns = (entry.get("response") or {}).get("ResourceArns") or {}
    arn = arns.get("thing" if kind == "aws.Thing" else "certificate")
    return arn.rsplit("/", 1)[-1] if isinstance(arn, str) and "/" in arn else None


def run_task(p: AwsProvider, changes: list[Change], lock: threading.Lock) -> list[errors.ProviderError | None]:
    """Carry out one batch (one shape) by one registration task; the outcome of each change, in order."""
    cfg = p.bulk
    assert cfg is not None
    hook = p.client.hook
    shapes = [shape(c, p.cert_status) for c in changes]
    s = shapes[0]
    if s is None:  # cannot happen when batches() cut the batch: per call, then
        return [_per_call(p, c) for c in changes]
    misfits = {i for i, x in enumerate(shapes) if x != s}  # cannot happen when batches() cut the batch
    rows = [(i, c) for i, c in enumerate(changes) if i not in misfits]
    started = time.monotonic()
    with lock:  # the provider's batches one after the other: AWS runs one task per account
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        key = f"{cfg.prefix}{stamp}-{uuid.uuid4().hex[:12]}.jsonl"
        try:
            p.client.put_text(
                cfg.bucket, key, "".join(json.dumps(line(c, s, p.cert_status), sort_keys=True) + "\n" for _, c in rows)
            )
        except errors.ProviderError as exc:
            raise type(exc)(
                f"cannot write the bulk registration input file s3://{cfg.bucket}/{key} "
                f"(aws.bulkRegistration.bucket): {exc}",
                code=exc.code,
                status=exc.status,
                request_id=exc.request_id,
            ) from None
        task_id = _start(p, cfg, template_body(s), key, hook)
        _note(
            hook,
            "task-started",
            taskId=task_id,
            input=f"s3://{cfg.bucket}/{key}",
            changes=len(rows),
            shape=s[0],
            task="AWS bulk registration task",
        )
        began = time.monotonic()
        while True:
            desc = _describe(p, task_id)
            if desc.get("status") not in ACTIVE:
                break
            time.sleep(next_poll(int(desc.get("percentageProgress") or 0), time.monotonic() - began, cfg))
        _note(
            hook,
            "task-ended",
            taskId=task_id,
            status=desc.get("status"),
            successCount=desc.get("successCount"),
            failureCount=desc.get("failureCount"),
        )
    p.bulk_stats["tasks"] += 1
    p.bulk_stats["changes"] += len(rows)
    outcomes: list[errors.ProviderError | None] = [None] * len(changes)
    for i in misfits:
        outcomes[i] = _per_call(p, changes[i])
    if desc.get("status") == "Failed":
        failure = errors.ProviderError(
            f"AWS bulk registration task {task_id} failed: {desc.get('message') or 'no reason given'}",
            code="ThingRegistrationTaskFailed",
        )
        for i, _ in rows:
            outcomes[i] = failure
        return outcomes
    results = _reports(p, task_id, "RESULTS")
    failures = _reports(p, task_id, "ERRORS")
    by_ref = {str(e.get("referenceId")): e for e in results + failures}
    by_key = {k: e for e in results if (k := _arn_key(e, changes[0].kind)) is not None}
    from engine.providers.aws.client import error_from_code

    for position, (i, c) in enumerate(rows):
        entry = by_key.get(_key(c)) or by_ref.get(str(position))
        if entry is not None and "response" in entry and _arn_key(entry, c.kind) not in (None, _key(c)):
            entry = None  # a referenceId that does not name this change's resource: not its result
        if entry is None:
            outcomes[i] = errors.ProviderError(
                f"AWS bulk registration task {task_id} ended {desc.get('status')} without a result for line {position}",
                code="NoResult",
            )
        elif "response" in entry:
            outcomes[i] = _completed(p, c, s, entry)
        elif c.kind == "aws.Certificate" and entry.get("errorCode") == "ResourceAlreadyExistsException":
            outcomes[i] = _per_call(p, c)  # registered by an interrupted apply: converge it per call
        else:
            outcomes[i] = error_from_code(
                str(entry.get("errorCode") or ""),
                f"{entry.get('errorMessage') or entry.get('errorCode')} (bulk registration "
                f"task {task_id}, input line {position})",
            )
    p.bulk_stats["seconds"] += time.monotonic() - started
    return outcomes


def _completed(p: AwsProvider, c: Change, s: Shape, entry: Mapping[str, Any]) -> errors.ProviderError | None:
    """A change the task created: record what later waves need; attach its certificate when the task could not."""
    arns = (entry.get("response") or {}).get("ResourceArns") or {}
    try:
        if c.kind == "aws.Certificate":
            cid = c.desired["certificateId"]
            if arns.get("certificate"):
                p.arns[cid] = arns["certificate"]
            p.cert_status[cid] = c.desired.get("status", "ACTIVE")
        elif s[-1] == "call":
            cert = c.desired["principals"][0]
            cid = c.inputs["certificateIds"][cert]
            p.client.call("attach_thing_principal", thingName=c.address.name, principal=p.cert_arn(cid))
    except errors.ProviderError as exc:
        return exc
    return None


def _per_call(p: AwsProvider, c: Change) -> errors.ProviderError | None:
    try:
        p.apply(c, {})
    except errors.ProviderError as exc:
        return exc
    return None
