"""Builders for the authz tests: policies, sessions and small desired fleets written as plain data."""

from __future__ import annotations

from typing import Any

from engine.authz.policy import Policy, parse_policy
from engine.diagnostics import Source
from engine.model import Address, DesiredResource

REGION, ACCOUNT, TARGET = "us-east-1", "123456789012", "aws-test"
ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}:"


def policy(name: str, *statements: dict[str, Any]) -> Policy:
    return parse_policy(name, {"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def desired(
    kind: str, name: str, spec: dict[str, Any], *, target: str = TARGET, inputs: dict | None = None, line: int = 1
) -> DesiredResource:
    return DesiredResource(
        Address.of("aws", target, kind.split(".")[-1], name),
        kind,
        spec,
        Source(f"fleet/{kind.split('.')[-1].lower()}.yaml", line, 1),
        inputs=inputs or {},
    )


def thing(name: str, *, groups=(), principals=(), thing_type=None, attributes=None, target=TARGET) -> DesiredResource:
    spec: dict[str, Any] = {"groups": list(groups), "principals": list(principals), "attributes": attributes or {}}
    if thing_type:
        spec["thingType"] = thing_type
    return desired("aws.Thing", name, spec, target=target)


def cert(name: str, *, policies=(), status="ACTIVE", pem=None, target=TARGET) -> DesiredResource:
    return desired(
        "aws.Certificate",
        name,
        {"status": status, "policies": list(policies)},
        target=target,
        inputs={"certificatePem": pem} if pem else {},
    )


def group(name: str, *, parent=None, policies=(), target=TARGET) -> DesiredResource:
    spec: dict[str, Any] = {"policies": list(policies)}
    if parent:
        spec["parent"] = parent
    return desired("aws.ThingGroup", name, spec, target=target)


def policy_res(name: str, *statements: dict[str, Any], target=TARGET) -> DesiredResource:
    return desired(
        "aws.Policy", name, {"document": {"Version": "2012-10-17", "Statement": list(statements)}}, target=target
    )


TARGETS = {TARGET: {"region": REGION, "accountId": ACCOUNT}}
