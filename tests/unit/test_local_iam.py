"""local.aws_calls and local.iam: each SDK request read as IAM reads it, and checked against a role."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest

from local.aws_calls import ANY_RESOURCE, Permission, describe
from local.iam import AccessPolicy, Role, access_denied, allows

ACCOUNT = "123456789012"
TABLE = f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/Articles"


class _Captured(Exception):
    def __init__(self, request: AWSPreparedRequest) -> None:
        self.request = request


def wire_request(service: str, operation: str, *, endpoint: str | None = None, **params: Any) -> AWSPreparedRequest:
    """The request the SDK puts on the wire for one call (signed, as sent), without sending it."""
    client = boto3.client(
        service,
        region_name="eu-west-1",
        endpoint_url=endpoint,
        aws_access_key_id="ASIAEXAMPLEKEY000001",
        aws_secret_access_key="secret",
        aws_session_token="token",
    )

    def capture(request: AWSPreparedRequest, **_: Any) -> None:
        raise _Captured(request)

    client.meta.events.register_first("before-send", capture)
    with pytest.raises(_Captured) as captured:
        getattr(client, operation)(**params)
    return captured.value.request


def needs(request: AWSPreparedRequest) -> list[Permission]:
    call = describe(request.method, request.url, dict(request.headers), request.body, account_id=ACCOUNT)
    assert call is not None
    assert call.access_key_id == "ASIAEXAMPLEKEY000001"
    return list(call.needs)


def test_a_dynamodb_write_needs_its_action_on_the_table() -> None:
    request = wire_request("dynamodb", "update_item", TableName="Articles", Key={"pk": {"S": "a"}},
                           UpdateExpression="SET x = :x", ExpressionAttributeValues={":x": {"S": "1"}})  # fmt: skip

    assert needs(request) == [Permission("dynamodb:UpdateItem", TABLE)]


def test_a_query_on_an_index_needs_the_index() -> None:
    request = wire_request(
        "dynamodb",
        "query",
        TableName="Articles",
        IndexName="by-feed",
        KeyConditionExpression="feed = :f",
        ExpressionAttributeValues={":f": {"S": "all"}},
    )

    assert needs(request) == [Permission("dynamodb:Query", f"{TABLE}/index/by-feed")]


def test_each_item_of_a_transaction_needs_its_own_action() -> None:
    request = wire_request(
        "dynamodb",
        "transact_write_items",
        TransactItems=[
            {"Put": {"TableName": "Articles", "Item": {"pk": {"S": "a"}}}},
            {"Update": {"TableName": "Publications", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET x = :x",
                        "ExpressionAttributeValues": {":x": {"S": "1"}}}},
            {"ConditionCheck": {"TableName": "Articles", "Key": {"pk": {"S": "b"}},
                                "ConditionExpression": "attribute_exists(pk)"}},
        ],
    )  # fmt: skip

    assert needs(request) == [
        Permission("dynamodb:PutItem", TABLE),
        Permission("dynamodb:UpdateItem", f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/Publications"),
        Permission("dynamodb:ConditionCheckItem", TABLE),
    ]


def test_a_batch_read_needs_every_table_it_names() -> None:
    keys = {"Articles": [{"pk": {"S": "a"}}], "Subscribers": [{"email": {"S": "x@example.org"}}]}
    request = wire_request("dynamodb", "batch_get_item", RequestItems={t: {"Keys": k} for t, k in keys.items()})

    assert needs(request) == [
        Permission("dynamodb:BatchGetItem", TABLE),
        Permission("dynamodb:BatchGetItem", f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/Subscribers"),
    ]


@pytest.mark.parametrize("endpoint", [None, "http://127.0.0.1:4566"])
def test_s3_objects_are_read_as_bucket_and_key_in_either_url_style(endpoint: str | None) -> None:
    latest = wire_request("s3", "get_object", endpoint=endpoint, Bucket="uploads", Key="articles/a b.md")
    version = wire_request("s3", "get_object", endpoint=endpoint, Bucket="uploads", Key="articles/a.md", VersionId="v1")
    listing = wire_request("s3", "list_objects_v2", endpoint=endpoint, Bucket="uploads")

    assert needs(latest) == [Permission("s3:GetObject", "arn:aws:s3:::uploads/articles/a b.md")]
    assert needs(version) == [Permission("s3:GetObjectVersion", "arn:aws:s3:::uploads/articles/a.md")]
    assert needs(listing) == [Permission("s3:ListBucket", "arn:aws:s3:::uploads")]


def test_an_ses_send_needs_the_sender_identity_and_the_configuration_set() -> None:
    request = wire_request("sesv2", "send_email", FromEmailAddress="news@example.org",
                           Destination={"ToAddresses": ["reader@example.net"]},
                           Content={"Raw": {"Data": b"From: news@example.org\r\n\r\nhi"}},
                           ConfigurationSetName="newsletters")  # fmt: skip

    assert needs(request) == [
        Permission("ses:SendEmail", f"arn:aws:ses:eu-west-1:{ACCOUNT}:identity/example.org"),
        Permission("ses:SendEmail", f"arn:aws:ses:eu-west-1:{ACCOUNT}:configuration-set/newsletters"),
    ]


def test_sqs_batches_need_the_single_message_action_on_the_queue() -> None:
    url = f"https://sqs.eu-west-1.amazonaws.com/{ACCOUNT}/send-queue"
    request = wire_request("sqs", "send_message_batch", QueueUrl=url, Entries=[{"Id": "1", "MessageBody": "x"}])

    assert needs(request) == [Permission("sqs:SendMessage", f"arn:aws:sqs:eu-west-1:{ACCOUNT}:send-queue")]


def test_parameters_secrets_and_topics_are_resources_too() -> None:
    secret = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:signing-Ab12Cd"
    topic = f"arn:aws:sns:eu-west-1:{ACCOUNT}:alarms"

    assert needs(wire_request("ssm", "get_parameter", Name="/stack/api-url")) == [
        Permission("ssm:GetParameter", f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/stack/api-url")
    ]
    assert needs(wire_request("secretsmanager", "get_secret_value", SecretId=secret)) == [
        Permission("secretsmanager:GetSecretValue", secret)
    ]
    assert needs(wire_request("sns", "publish", TopicArn=topic, Message="x")) == [Permission("sns:Publish", topic)]


def test_an_unsigned_request_is_no_aws_call() -> None:
    assert describe("GET", "http://127.0.0.1:4566/", {}, b"", account_id=ACCOUNT) is None


# ------------------------------------------------------------------------------------------ policies

POLICY = {
    "Statement": [
        {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:Query"], "Resource": [TABLE, f"{TABLE}/index/*"]},
        {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::uploads/articles/*"},
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::uploads/articles/secret?.md"},
        {"Effect": "Allow", "NotAction": "sqs:*", "Resource": "arn:aws:sns:*"},
        {"Effect": "Allow", "Action": "ses:SendEmail", "Resource": "*", "Condition": {"StringEquals": {"x": "y"}}},
    ]
}


@pytest.mark.parametrize(
    ("action", "resource", "allowed"),
    [
        ("dynamodb:GetItem", TABLE, True),
        ("DynamoDB:getitem", TABLE, True),  # actions are case-insensitive
        ("dynamodb:Query", f"{TABLE}/index/by-feed", True),
        ("dynamodb:UpdateItem", TABLE, False),  # nothing allows it: an implicit deny
        ("dynamodb:GetItem", TABLE + "2", False),  # a resource is matched whole
        ("dynamodb:GetItem", ANY_RESOURCE, False),
        ("s3:GetObjectVersion", "arn:aws:s3:::uploads/articles/a.md", True),
        ("s3:GetObject", "arn:aws:s3:::uploads/articles/secret1.md", False),  # an explicit deny wins
        ("s3:GetObject", "arn:aws:s3:::uploads/articles/secret12.md", True),  # ? is one character
        ("s3:GetObject", "arn:aws:s3:::uploads/subscribers/a.csv", False),
        ("sns:Publish", "arn:aws:sns:eu-west-1:1:topic", True),
        ("sqs:SendMessage", "arn:aws:sns:eu-west-1:1:topic", False),
        ("ses:SendEmail", "arn:aws:ses:eu-west-1:1:identity/x", False),  # a condition never loosens locally
    ],
)
def test_policy_evaluation_follows_iam(action: str, resource: str, allowed: bool) -> None:
    assert allows([POLICY], Permission(action, resource)) is allowed


def test_a_refused_call_answers_the_services_own_error_and_is_recorded() -> None:
    policy = AccessPolicy(ACCOUNT, {"MailerFunction": Role("MailerFunction", "arn:role/Mailer", (POLICY,))})
    request = wire_request("dynamodb", "delete_item", TableName="Articles", Key={"pk": {"S": "a"}})
    call = describe(request.method, request.url, dict(request.headers), request.body, account_id=ACCOUNT)
    assert call is not None

    denial = policy.check(call, "MailerFunction")
    assert policy.check(call, None) is None  # the administrator may do anything

    assert denial is not None
    assert denial.as_dict() == {"function": "MailerFunction", "action": "dynamodb:DeleteItem", "resource": TABLE}
    status, headers, body = access_denied(call, denial)
    assert status == 400
    assert b"AccessDeniedException" in body
    assert b"not authorized to perform: dynamodb:DeleteItem" in body
    assert headers["Content-Type"].startswith("application/x-amz-json")
    assert policy.take_denials() == [denial]
    assert policy.take_denials() == []
