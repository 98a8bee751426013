"""Effective permissions before merge: an offline AWS IoT policy evaluator over the desired fleet.

AWS answers "what may this device do?" only on a live account (TestAuthorization, the Device Defender audit),
after the change is deployed. The desired fleet already holds every input of that answer (policies, their
attachments to certificates and thing groups with the group hierarchy, things with names, types and
attributes, certificates with their subject fields), so fleetctl answers it before merge, for every device.

Modules: `policy` (documents → statements, wildcards), `variables` (policy variables for one connection),
`evaluate` (the decision and the statements that made it), `principals` (each thing's policies in effect;
folding things whose permissions are the same up to their own name), `matrix` (what each thing may connect as,
publish, subscribe and receive), `crossdevice` (concrete requests one device may make on another's resources),
`delta` (the requests a change of policies, attachments or memberships newly allows or denies), `cli`.
The semantics and the developer-guide section each rule follows are in each module's docstring; the
user-facing summary is docs/authz.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.authz.evaluate import Decision, Request, Result, evaluate
from engine.authz.principals import AuthzFleet, Connection

# The resource type of each data-plane action (developer guide, "AWS IoT Core action resources").
RESOURCE_TYPES = {
    "iot:connect": "client",
    "iot:deleteconnection": "client",
    "iot:publish": "topic",
    "iot:receive": "topic",
    "iot:retainpublish": "topic",
    "iot:getretainedmessage": "topic",
    "iot:subscribe": "topicfilter",
    "iot:getthingshadow": "thing",
    "iot:updatethingshadow": "thing",
    "iot:deletethingshadow": "thing",
    "iot:listnamedshadowsforthing": "thing",
    "iotjobsdata:describejobexecution": "thing",
    "iotjobsdata:getpendingjobexecutions": "thing",
    "iotjobsdata:startnextpendingjobexecution": "thing",
    "iotjobsdata:updatejobexecution": "thing",
}


def resource_type(action: str) -> str | None:
    return RESOURCE_TYPES.get(action.lower())


@dataclass(frozen=True)
class Answer:
    """The decision for one connection of a thing (one per certificate attached to it)."""

    connection: Connection
    client_id: str
    result: Result

    def to_json(self) -> dict[str, Any]:
        c = self.connection
        return {
            "thing": c.thing.name,
            "target": c.thing.target,
            "certificate": c.certificate.name if c.certificate else None,
            "clientId": self.client_id,
            "policies": [p.name for p in c.session(self.client_id)[1]],
            **self.result.to_json(),
        }


def check(
    fleet: AuthzFleet, thing_name: str, target: str, action: str, resource: str, client_id: str | None = None
) -> list[Answer]:
    """What `thing_name` may do: the decision for `action` on `resource`, for each of its connections, with
    `client_id` (default: the thing name, as the developer guide recommends)."""
    thing = fleet.things[(target, thing_name)]
    client = client_id if client_id is not None else thing.name
    out = []
    for conn in fleet.connections(thing):
        session, policies = conn.session(client)
        out.append(Answer(conn, client, evaluate(policies, Request(action, resource), session, refused=conn.refused)))
    return out


__all__ = ["Answer", "AuthzFleet", "Decision", "Request", "Result", "check", "evaluate", "resource_type"]
