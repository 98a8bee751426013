"""The sandbox's IAM checks a role's trust policy as IAM does (engine/sandbox/moto_access.py): a malformed one is
IAM's 400 MalformedPolicyDocument, not a 500 of the emulator (it was, while moto's error class was misnamed)."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

GOOD = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": '
    '"credentials.iot.amazonaws.com"}, "Action": "sts:AssumeRole"}]}'
)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}',
            "AssumeRolepolicy contains an invalid principal",
        ),
        ("not json", "This policy contains invalid Json"),
        ('{"Version": "2012-10-17"}', "The policy is missing a Statement"),
    ],
)
def test_a_malformed_trust_policy_is_iams_400(aws_env, document: str, message: str) -> None:
    iam = boto3.client("iam", region_name="us-east-1")
    with pytest.raises(ClientError) as caught:
        iam.create_role(RoleName="bad-trust", AssumeRolePolicyDocument=document)
    error = caught.value.response
    assert (error["Error"]["Code"], error["Error"]["Message"]) == ("MalformedPolicyDocument", message)
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    iam.create_role(RoleName="good-trust", AssumeRolePolicyDocument=GOOD)
    with pytest.raises(ClientError) as caught:
        iam.update_assume_role_policy(RoleName="good-trust", PolicyDocument=document)
    assert caught.value.response["Error"]["Message"] == message
