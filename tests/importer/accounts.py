"""AWS accounts built the way fleets are built before fleetctl: boto3 calls straight at moto, in the order of
IoTReady's registerDevice.py (research/quotas.md §5), plus what consoles and other scripts add.

boto3 is used directly on purpose: these functions play the scripts fleetctl takes over, not fleetctl.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
from botocore.config import Config

from tests.conftest import FLEET

CERTS = FLEET / "aws" / "certs"
PUB_SUB_TO_ANY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["iot:*"], "Resource": ["*"]}]}


def iot():
    return boto3.client("iot", region_name="eu-west-2", config=Config(retries={"total_max_attempts": 1}))


def register_device(c, mac: str, *, thing_type: str = "IoTReady", owner: str = "alice") -> str:
    """registerDevice.py for one ESP32, call for call (new device): returns the certificate id."""
    try:
        c.create_policy(policyName="pubSubToAny", policyDocument=json.dumps(PUB_SUB_TO_ANY))
    except c.exceptions.ResourceAlreadyExistsException:
        pass  # "Reusing existing policy"
    try:
        c.list_thing_principals(thingName=mac)
    except c.exceptions.ResourceNotFoundException:
        pass
    keys = c.create_keys_and_certificate(setAsActive=True)  # the script writes keys["keyPair"] to disk
    c.attach_principal_policy(policyName="pubSubToAny", principal=keys["certificateArn"])
    c.create_thing(thingName=mac, thingTypeName=thing_type, attributePayload={"attributes": {"owner": owner}})
    c.attach_thing_principal(thingName=mac, principal=keys["certificateArn"])
    return keys["certificateId"]


def script_fleet(c, macs: list[str]) -> dict[str, str]:
    """A thing type made by hand first, then one registerDevice.py run per device: mac → certificate id."""
    c.create_thing_type(thingTypeName="IoTReady")
    return {mac: register_device(c, mac) for mac in macs}


def mixed_account(c) -> dict[str, str]:
    """Every AWS kind, built by scripts and consoles: what a real account looks like when fleetctl arrives."""
    ids = script_fleet(c, ["246F28A1B2C3", "246F28A1B2C4"])
    orphan = c.create_keys_and_certificate(setAsActive=True)  # a script run that crashed after step 4
    c.attach_principal_policy(policyName="pubSubToAny", principal=orphan["certificateArn"])
    ids["orphan"] = orphan["certificateId"]
    rotated = c.create_keys_and_certificate(setAsActive=False)  # a manual rotation left an INACTIVE second cert
    c.attach_thing_principal(thingName="246F28A1B2C3", principal=rotated["certificateArn"])
    ids["rotated"] = rotated["certificateId"]
    c.create_thing_type(
        thingTypeName="springpark",
        thingTypeProperties={
            "thingTypeDescription": "SpringCard SpringPark reader",
            "searchableAttributes": ["serial", "site"],
        },
    )
    c.create_thing_type(thingTypeName="legacy")
    c.deprecate_thing_type(thingTypeName="legacy")
    c.create_thing_group(thingGroupName="readers", thingGroupProperties={"thingGroupDescription": "all readers"})
    c.create_thing_group(
        thingGroupName="paris-readers",
        parentGroupName="readers",
        thingGroupProperties={"thingGroupDescription": "Paris", "attributePayload": {"attributes": {"site": "paris"}}},
    )
    c.create_policy(
        policyName="reader-policy",
        policyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "iot:Connect",
                        "Resource": "arn:aws:iot:eu-west-2:123456789012:client/${iot:Connection.Thing.ThingName}",
                    }
                ],
            }
        ),
    )
    c.create_policy_version(
        policyName="reader-policy",
        setAsDefault=True,
        policyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": ["iot:Connect", "iot:Publish"], "Resource": ["*"]}],
            }
        ),
    )
    c.attach_policy(
        policyName="reader-policy", target=c.describe_thing_group(thingGroupName="paris-readers")["thingGroupArn"]
    )
    ca_pem = (CERTS / "springcore-sandbox-ca.pem").read_text()
    c.register_ca_certificate(
        caCertificate=ca_pem,
        setAsActive=True,
        allowAutoRegistration=False,
        verificationCertificate=(CERTS / "springcore-sandbox-ca-verification.pem").read_text(),
    )
    reader = c.register_certificate(
        certificatePem=(CERTS / "da1275b0.pem").read_text(), caCertificatePem=ca_pem, status="ACTIVE"
    )
    c.attach_policy(policyName="reader-policy", target=reader["certificateArn"])
    c.create_thing(
        thingName="DA1275B0",
        thingTypeName="springpark",
        attributePayload={"attributes": {"serial": "DA1275B0", "site": "paris", "floor": "-2"}},
    )
    c.attach_thing_principal(thingName="DA1275B0", principal=reader["certificateArn"])
    c.add_thing_to_thing_group(thingGroupName="paris-readers", thingName="DA1275B0")
    ids["reader"] = reader["certificateId"]
    # a console-made thing without type, with values YAML could misread if written carelessly
    c.create_thing(thingName="bench-42", attributePayload={"attributes": {"code": "007", "flag": "yes"}})
    c.create_topic_rule(
        ruleName="lora_to_dynamodb",
        topicRulePayload={
            "sql": "SELECT * FROM 'lora/#'",
            "description": "Store LoRa uplinks",
            "ruleDisabled": False,
            "awsIotSqlVersion": "2016-03-23",
            "actions": [
                {
                    "dynamoDB": {
                        "tableName": "lora_uplinks",
                        "roleArn": "arn:aws:iam::123456789012:role/lora",
                        "hashKeyField": "device",
                        "hashKeyValue": "${topic(2)}",
                        "hashKeyType": "STRING",
                    }
                }
            ],
            "errorAction": {"republish": {"topic": "errors", "roleArn": "arn:aws:iam::123456789012:role/lora"}},
        },
    )
    return ids


def targets_only(tmp_path: Path) -> Path:
    """A fleet folder that declares only the Target (the state before any import)."""
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    shutil.copy(FLEET / "targets.yaml", fleet / "targets.yaml")
    return fleet
