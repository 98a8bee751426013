"""Reads and writes of topic-rule destinations (HTTP and VPC), with AWS's confirmation flow.

An HTTP destination is created IN_PROGRESS: AWS sends a confirmation token to its confirmation URL, and only
when the endpoint's owner calls ConfirmTopicRuleDestination with it does the destination become ENABLED.
fleetctl cannot confirm (it never sees the token): apply creates the destination and waits up to the manifest's
`confirmationWaitSeconds` for ENABLED; past that the change fails with what to do, and the rules posting under
the destination (which depend on it) are skipped. The next plan shows the destination still awaiting
confirmation, and its apply waits again. A VPC destination is ENABLED at once.

Destinations cannot be tagged: one is managed while a manifest declares it, matched by its identity on AWS (the
confirmation URL; a VPC destination's VPC id), so prune never deletes an undeclared destination, and changing the
URL or VPC id declares another destination (the old one, now undeclared, is left alone). Other VPC settings
(subnets, security groups, role) cannot change in place: the destination is replaced. AWS deletes only a DISABLED
destination that no rule uses: the delete handler disables first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from engine import errors
from engine.model import Action, ActualResource, Change
from engine.providers.aws.families import Family, ignore_missing, register, replacing
from engine.providers.aws.kinds_account import destination_name

POLL_SECONDS = 2.0
CLOCK: Callable[[], float] = time.monotonic
SLEEP: Callable[[float], None] = time.sleep


def _key(http: dict[str, Any] | None, vpc: dict[str, Any] | None) -> str:
    return f"http:{http['confirmationUrl']}" if http else f"vpc:{(vpc or {}).get('vpcId')}"


def _read_destinations(ctx: Any) -> list[ActualResource]:
    declared = {
        _key(d.spec.get("http"), d.spec.get("vpc")): name
        for name, d in ctx.by_kind.get("aws.TopicRuleDestination", {}).items()
    }
    try:
        rows = list(ctx.c.pages("list_topic_rule_destinations", "destinationSummaries"))
    except errors.Unsupported:
        ctx.p.gap("ListTopicRuleDestinations: topic rule destinations are not read")
        return []
    out = []
    for row in rows:
        http = row.get("httpUrlSummary")
        vpc = row.get("vpcDestinationSummary")
        state: dict[str, Any] = {"status": row.get("status")}
        if http:
            state["http"] = {"confirmationUrl": http["confirmationUrl"]}
        if vpc:
            state["vpc"] = {
                "vpcId": vpc.get("vpcId"),
                "subnetIds": sorted(vpc.get("subnetIds") or []),
                "securityGroups": sorted(vpc.get("securityGroups") or []),
                "roleArn": vpc.get("roleArn"),
            }
        key = _key(state.get("http"), state.get("vpc"))
        name = declared.get(key) or destination_name(http["confirmationUrl"] if http else vpc.get("vpcId", ""))
        out.append(
            ActualResource(
                ctx.p.addr("TopicRuleDestination", name),
                "aws.TopicRuleDestination",
                state,
                managed=key in declared,
                ids={"arn": row["arn"], "statusReason": row.get("statusReason")},
            )
        )
    return out


def _status(p: Any, arn: str) -> str:
    status: str = p.client.call("get_topic_rule_destination", arn=arn)["topicRuleDestination"]["status"]
    return status


def _await_confirmation(p: Any, c: Change, arn: str) -> None:
    wait = float(c.inputs.get("confirmationWaitSeconds", 300))
    deadline = CLOCK() + wait
    while True:
        status = _status(p, arn)
        if status == "ENABLED":
            return
        if status not in ("IN_PROGRESS",) or CLOCK() >= deadline:
            raise errors.PreconditionFailed(
                f"topic rule destination {c.desired['http']['confirmationUrl']} is {status}, not ENABLED, after "
                f"{wait:g} s: its endpoint must confirm it (ConfirmTopicRuleDestination with the token AWS sent to "
                f"the confirmation URL); rules posting under it are applied by the next apply after that",
                code="DestinationNotConfirmed",
            )
        SLEEP(min(POLL_SECONDS, max(0.0, deadline - CLOCK())))


def _create(p: Any, c: Change) -> dict[str, Any]:
    d = c.desired
    conf = {"httpUrlConfiguration": dict(d["http"])} if d.get("http") else {"vpcConfiguration": dict(d["vpc"])}
    dest = p.client.call("create_topic_rule_destination", destinationConfiguration=conf)["topicRuleDestination"]
    arn = dest["arn"]
    if d.get("http") and d["status"] == "ENABLED":
        _await_confirmation(p, c, arn)
    elif d["status"] == "DISABLED" and dest.get("status") == "ENABLED":
        p.client.call("update_topic_rule_destination", arn=arn, status="DISABLED")
    return {"arn": arn}


def _update(p: Any, c: Change) -> dict[str, Any]:
    arn = c.ids["arn"]
    want = c.desired["status"]
    if want == "ENABLED" and c.actual.get("status") == "IN_PROGRESS":
        _await_confirmation(p, c, arn)
    elif want != c.actual.get("status"):
        p.client.call("update_topic_rule_destination", arn=arn, status=want)
    return {}


def _delete(p: Any, c: Change) -> dict[str, Any]:
    arn = c.ids["arn"]
    if c.actual.get("status") != "DISABLED":
        p.client.call("update_topic_rule_destination", arn=arn, status="DISABLED")
    ignore_missing(p.client.call, "delete_topic_rule_destination", arn=arn)
    return {}


register(
    Family(
        "aws.TopicRuleDestination",
        _read_destinations,
        {
            Action.CREATE: _create,
            Action.UPDATE: _update,
            Action.DELETE: _delete,
            Action.REPLACE: replacing(_delete, _create),
        },
        before="aws.TopicRule",
    )
)
