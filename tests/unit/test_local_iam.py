"""local.iam.calls and local.iam.policies: each SDK request read as IAM reads it, and checked against a role."""

from __future__ import annotations

import datetime
import subprocess
import sys
import time
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.awsrequest import AWSPreparedRequest, HeadersDict
from botocore.config import Config
from botocore.parsers import create_parser

from local.iam.calls import ANY_RESOURCE, Call, Permission, describe
from local.iam.policies import AccessPolicy, Role, access_denied, allows, signature_refused, wildcard_matches
from local.iam.ses_identities import SesLookup, SesState, covering_identity
from local.iam.signatures import Received, Refusal, refusal

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


def read(request: AWSPreparedRequest, ses: SesLookup | None = None) -> Call:
    call = describe(request.method, request.url, dict(request.headers), request.body, account_id=ACCOUNT, ses=ses)
    assert call is not None
    assert call.access_key_id == "ASIAEXAMPLEKEY000001"
    return call


def needs(request: AWSPreparedRequest, ses: SesLookup | None = None) -> list[Permission]:
    return list(read(request, ses).needs)


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
                           Content={"Simple": {"Subject": {"Data": "hi"}, "Body": {"Text": {"Data": "hi"}}}},
                           ConfigurationSetName="newsletters")  # fmt: skip

    assert needs(request) == [
        Permission("ses:SendEmail", f"arn:aws:ses:eu-west-1:{ACCOUNT}:identity/example.org"),
        Permission("ses:SendEmail", f"arn:aws:ses:eu-west-1:{ACCOUNT}:configuration-set/newsletters"),
    ]


def test_a_v2_send_of_raw_content_needs_send_raw_email_too() -> None:
    # AWS refuses it without ses:SendRawEmail (its AccessDenied names that action), and documents
    # ses:SendEmail for the operation: the local stack needs both.
    request = wire_request("sesv2", "send_email", FromEmailAddress="news@example.org",
                           Destination={"ToAddresses": ["reader@example.net"]},
                           Content={"Raw": {"Data": b"From: news@example.org\r\n\r\nhi"}})  # fmt: skip

    assert needs(request) == [
        Permission("ses:SendEmail", f"arn:aws:ses:eu-west-1:{ACCOUNT}:identity/example.org"),
        Permission("ses:SendRawEmail", f"arn:aws:ses:eu-west-1:{ACCOUNT}:identity/example.org"),
    ]


def _partition_key_pk(_region: str, table: str) -> str | None:
    return "pk" if table == "Articles" else None


def test_item_requests_set_their_leading_keys_and_a_query_leaves_them_unknown() -> None:
    def leading_keys(request: AWSPreparedRequest) -> tuple[str, ...] | None:
        call = describe(request.method, request.url, dict(request.headers), request.body, account_id=ACCOUNT,
                        partition_keys=_partition_key_pk)  # fmt: skip
        assert call is not None
        return call.conditions.get("dynamodb:leadingkeys")

    get = wire_request("dynamodb", "get_item", TableName="Articles", Key={"pk": {"S": "slug#a"}})
    batch = wire_request("dynamodb", "batch_get_item", RequestItems={
        "Articles": {"Keys": [{"pk": {"S": "slug#a"}}, {"pk": {"S": "article#1"}}]}})  # fmt: skip
    query = wire_request("dynamodb", "query", TableName="Articles", KeyConditionExpression="pk = :v",
                         ExpressionAttributeValues={":v": {"S": "slug#a"}})  # fmt: skip
    other = wire_request("dynamodb", "get_item", TableName="Unknown", Key={"pk": {"S": "slug#a"}})

    assert leading_keys(get) == ("slug#a",)
    assert leading_keys(batch) == ("slug#a", "article#1")
    assert leading_keys(query) is None
    assert leading_keys(other) is None


SLUGS_ONLY = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["slug#*"]}}
LEADING_SLUGS = {
    "Statement": [{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": TABLE, "Condition": SLUGS_ONLY}]
}


def test_a_wildcard_matches_across_lines_as_iam_does() -> None:
    conditions = {"dynamodb:leadingkeys": ("slug#two\nlines",)}

    assert allows([LEADING_SLUGS], Permission("dynamodb:GetItem", TABLE), conditions)


@pytest.mark.parametrize(
    ("keys", "allowed"),
    [((("slug#a",)), True), (("slug#a", "article#1"), False), (("article#1",), False), (None, False)],
)
def test_leading_keys_allow_only_the_partitions_named_and_never_when_unknown(
    keys: tuple[str, ...] | None, allowed: bool
) -> None:
    conditions = {} if keys is None else {"dynamodb:leadingkeys": keys}

    assert allows([LEADING_SLUGS], Permission("dynamodb:GetItem", TABLE), conditions) is allowed


def test_stream_reads_need_their_action_on_the_stream_their_iterator_names() -> None:
    stream = f"{TABLE}/stream/2026-01-01T00:00:00.000"
    request = wire_request("dynamodbstreams", "get_records", ShardIterator=f"{stream}|1|AAAAAAAAAAEvJp6D")
    tables = wire_request("dynamodbstreams", "list_streams", TableName="Articles")

    assert needs(request) == [Permission("dynamodb:GetRecords", stream)]
    assert needs(tables) == [Permission("dynamodb:ListStreams", f"{TABLE}/stream/*")]


def test_a_message_move_task_reads_at_its_source_and_sends_back_where_the_messages_came_from() -> None:
    source = f"arn:aws:sqs:eu-west-1:{ACCOUNT}:dead-letters"
    queues = [f"arn:aws:sqs:eu-west-1:{ACCOUNT}:jobs", f"arn:aws:sqs:eu-west-1:{ACCOUNT}:other-jobs"]
    request = wire_request("sqs", "start_message_move_task", SourceArn=source)
    call = describe(request.method, request.url, dict(request.headers), request.body, account_id=ACCOUNT,
                    redrive_sources=lambda arn: queues if arn == source else [])  # fmt: skip

    assert call is not None
    assert list(call.needs) == [
        Permission("sqs:StartMessageMoveTask", source),
        Permission("sqs:ReceiveMessage", source),
        Permission("sqs:DeleteMessage", source),
        Permission("sqs:GetQueueAttributes", source),
        Permission("sqs:SendMessage", queues[0]),
        Permission("sqs:SendMessage", queues[1]),
    ]


OBJECT = "arn:aws:s3:::uploads/articles/a.md"
BUCKET = "arn:aws:s3:::uploads"
LATER = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("operation", "params", "expected"),
    [
        ("get_object_acl", {}, [("GetObjectAcl", OBJECT)]),
        ("get_object_acl", {"VersionId": "v1"}, [("GetObjectVersionAcl", OBJECT)]),
        ("put_object_acl", {"ACL": "private"}, [("PutObjectAcl", OBJECT)]),
        ("put_object_acl", {"ACL": "private", "VersionId": "v1"}, [("PutObjectVersionAcl", OBJECT)]),
        ("get_object_retention", {}, [("GetObjectRetention", OBJECT)]),
        ("put_object_retention", {"Retention": {"Mode": "GOVERNANCE", "RetainUntilDate": LATER}},
         [("PutObjectRetention", OBJECT)]),
        ("get_object_legal_hold", {}, [("GetObjectLegalHold", OBJECT)]),
        ("put_object_legal_hold", {"LegalHold": {"Status": "ON"}}, [("PutObjectLegalHold", OBJECT)]),
        ("get_object_attributes", {"ObjectAttributes": ["ETag"]}, [("GetObjectAttributes", OBJECT)]),
        ("get_object_attributes", {"ObjectAttributes": ["ETag"], "VersionId": "v1"},
         [("GetObjectVersionAttributes", OBJECT)]),
        ("get_object_tagging", {}, [("GetObjectTagging", OBJECT)]),
        ("get_object_tagging", {"VersionId": "v1"}, [("GetObjectVersionTagging", OBJECT)]),
        ("put_object_tagging", {"Tagging": {"TagSet": []}}, [("PutObjectTagging", OBJECT)]),
        ("delete_object_tagging", {"VersionId": "v1"}, [("DeleteObjectVersionTagging", OBJECT)]),
        ("head_object", {}, [("GetObject", OBJECT)]),
        ("delete_object", {"VersionId": "v1"}, [("DeleteObjectVersion", OBJECT)]),
        ("create_multipart_upload", {}, [("PutObject", OBJECT)]),
        ("upload_part", {"UploadId": "u", "PartNumber": 1, "Body": b"x"}, [("PutObject", OBJECT)]),
        ("complete_multipart_upload", {"UploadId": "u"}, [("PutObject", OBJECT)]),
        ("abort_multipart_upload", {"UploadId": "u"}, [("AbortMultipartUpload", OBJECT)]),
        ("list_parts", {"UploadId": "u"}, [("ListMultipartUploadParts", OBJECT)]),
        # A write that also sets the object's ACL or tags needs those actions too.
        ("put_object", {"Body": b"x", "ACL": "private", "Tagging": "a=b"},
         [("PutObject", OBJECT), ("PutObjectAcl", OBJECT), ("PutObjectTagging", OBJECT)]),
        # A copy reads its source: GetObject on it, GetObjectVersion for one version of it.
        ("copy_object", {"CopySource": {"Bucket": "drafts", "Key": "a b.md", "VersionId": "v9"}},
         [("PutObject", OBJECT), ("GetObjectVersion", "arn:aws:s3:::drafts/a b.md")]),
        ("upload_part_copy", {"CopySource": "drafts/b.md", "UploadId": "u", "PartNumber": 1},
         [("PutObject", OBJECT), ("GetObject", "arn:aws:s3:::drafts/b.md")]),
    ],
)  # fmt: skip
def test_s3_object_sub_resources_need_their_own_actions(
    operation: str, params: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    if operation == "complete_multipart_upload":
        params = params | {"MultipartUpload": {"Parts": [{"ETag": "e", "PartNumber": 1}]}}
    request = wire_request("s3", operation, Bucket="uploads", Key="articles/a.md", **params)

    assert needs(request) == [Permission(f"s3:{action}", resource) for action, resource in expected]


@pytest.mark.parametrize(
    ("operation", "params", "action"),
    [
        ("get_bucket_acl", {}, "GetBucketAcl"),
        ("put_bucket_acl", {"ACL": "private"}, "PutBucketAcl"),
        ("get_bucket_location", {}, "GetBucketLocation"),
        ("get_public_access_block", {}, "GetBucketPublicAccessBlock"),
        ("put_public_access_block", {"PublicAccessBlockConfiguration": {"BlockPublicAcls": True}},
         "PutBucketPublicAccessBlock"),
        ("delete_public_access_block", {}, "PutBucketPublicAccessBlock"),
        ("get_bucket_ownership_controls", {}, "GetBucketOwnershipControls"),
        ("put_bucket_ownership_controls",
         {"OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}}, "PutBucketOwnershipControls"),
        ("delete_bucket_ownership_controls", {}, "PutBucketOwnershipControls"),
        ("get_bucket_versioning", {}, "GetBucketVersioning"),
        ("put_bucket_versioning", {"VersioningConfiguration": {"Status": "Enabled"}}, "PutBucketVersioning"),
        ("get_bucket_policy", {}, "GetBucketPolicy"),
        ("put_bucket_policy", {"Policy": "{}"}, "PutBucketPolicy"),
        ("delete_bucket_policy", {}, "DeleteBucketPolicy"),
        ("get_bucket_lifecycle_configuration", {}, "GetLifecycleConfiguration"),
        ("put_bucket_lifecycle_configuration", {"LifecycleConfiguration": {"Rules": []}}, "PutLifecycleConfiguration"),
        ("get_bucket_notification_configuration", {}, "GetBucketNotification"),
        ("put_bucket_notification_configuration", {"NotificationConfiguration": {}}, "PutBucketNotification"),
        ("list_multipart_uploads", {}, "ListBucketMultipartUploads"),
        ("list_object_versions", {}, "ListBucketVersions"),
        ("list_objects", {}, "ListBucket"),
        ("head_bucket", {}, "ListBucket"),
        ("get_bucket_tagging", {}, "GetBucketTagging"),
        ("delete_bucket_tagging", {}, "PutBucketTagging"),
    ],
)  # fmt: skip
def test_s3_bucket_sub_resources_need_their_own_actions(operation: str, params: dict[str, Any], action: str) -> None:
    request = wire_request("s3", operation, Bucket="uploads", **params)

    assert needs(request) == [Permission(f"s3:{action}", BUCKET)]


def test_a_request_is_read_the_same_after_the_sdk_has_sent_its_operation() -> None:
    # An S3 client rewrites its model's request URIs the first time it calls an operation, and the local
    # stack's processes share one model loader: reading the wire must not depend on what a client did first.
    script = """
import boto3
from local.aws import moto_fixes
from tests.unit.test_local_iam import needs, wire_request
moto_fixes.apply()
params = {"VersioningConfiguration": {"Status": "Enabled"}}
used = [wire_request("s3", "put_bucket_versioning", Bucket="uploads", **params) for _ in range(2)]
listed = [wire_request("s3", "list_objects", Bucket="uploads") for _ in range(2)]
print(*(permission.action for request in (*used, *listed) for permission in needs(request)))
"""
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)

    assert ran.stdout.split() == ["s3:PutBucketVersioning"] * 2 + ["s3:ListBucket"] * 2, ran.stderr[-2000:]


def test_deleting_several_objects_needs_delete_object_and_listing_buckets_needs_its_own_action() -> None:
    delete = wire_request("s3", "delete_objects", Bucket="uploads", Delete={"Objects": [{"Key": "articles/a.md"}]})

    assert needs(delete) == [Permission("s3:DeleteObject", "arn:aws:s3:::uploads/*")]
    assert needs(wire_request("s3", "list_buckets")) == [Permission("s3:ListAllMyBuckets", ANY_RESOURCE)]


@pytest.mark.parametrize(
    ("address", "identities", "covering"),
    [
        ("news@example.org", {"example.org"}, "example.org"),
        ("news@mail.example.org", {"example.org"}, "example.org"),  # a parent domain covers its subdomains
        ("news@mail.example.org", {"example.org", "mail.example.org"}, "mail.example.org"),  # the closest wins
        ("news@example.org", {"example.org", "news@example.org"}, "news@example.org"),  # the address first
        ("news@EXAMPLE.org", {"example.org"}, "example.org"),  # domains without case
        ("News@example.org", {"news@example.org"}, None),  # a local part as written
        ("news@example.org", {"other.org", "org"}, None),  # a top-level domain is no identity
        ("news@example.org.evil", {"example.org"}, None),
    ],
)
def test_the_identity_that_covers_an_address_is_found_as_ses_finds_it(
    address: str, identities: set[str], covering: str | None
) -> None:
    assert covering_identity(address, identities) == covering


def ses_state(*identities: str, sandbox: bool) -> SesLookup:
    return lambda _region: SesState(frozenset(identities), sandbox)


def identity(name: str) -> Permission:
    return Permission("ses:SendEmail", f"arn:aws:ses:eu-west-1:{ACCOUNT}:identity/{name}")


def send(*recipients: str, sender: str | None = "news@mail.example.org") -> AWSPreparedRequest:
    headers = f"From: The Gazette <news@mail.example.org>\r\nTo: {', '.join(recipients)}\r\n\r\nhi"
    params: dict[str, Any] = {"Content": {"Raw": {"Data": headers.encode()}}, "ConfigurationSetName": "newsletters"}
    if sender:
        params |= {"FromEmailAddress": sender, "Destination": {"ToAddresses": list(recipients)}}
    return wire_request("sesv2", "send_email", **params)


CONFIGURATION_SET = Permission("ses:SendEmail", f"arn:aws:ses:eu-west-1:{ACCOUNT}:configuration-set/newsletters")


def send_email_needs(call: Call) -> list[Permission]:
    """A raw send needs ses:SendRawEmail on the same resources as ses:SendEmail: the latter's, checked once."""
    sends = [need for need in call.needs if need.action == "ses:SendEmail"]
    assert [need for need in call.needs if need.action == "ses:SendRawEmail"] == [
        Permission("ses:SendRawEmail", need.resource) for need in sends
    ]
    return sends


def test_a_send_needs_the_identity_covering_its_sender_and_sets_the_sending_condition_keys() -> None:
    call = read(send("me@example.net", "you@example.com"), ses_state("example.org", "me@example.net", sandbox=False))

    assert send_email_needs(call) == [identity("example.org"), CONFIGURATION_SET]
    assert call.conditions == {
        "ses:fromaddress": ("news@mail.example.org",),
        "ses:recipients": ("me@example.net", "you@example.com"),
    }


def test_in_the_sandbox_a_send_needs_the_identity_covering_each_recipient_too() -> None:
    state = ses_state("example.org", "me@example.net", "example.com", sandbox=True)

    call = read(send("me@example.net", "you@sub.example.com", "them@example.com", "success@simulator.amazonses.com",
                     "stranger@example.io"), state)  # fmt: skip

    # The simulator needs no identity; an address none covers is SES's own MessageRejected, not IAM's.
    assert send_email_needs(call) == [identity("example.org"), identity("me@example.net"), identity("example.com"),
                                      CONFIGURATION_SET]  # fmt: skip


def test_a_raw_message_without_a_from_address_is_read_from_its_headers() -> None:
    call = read(send("me@example.net", sender=None), ses_state("example.org", "me@example.net", sandbox=True))

    assert send_email_needs(call) == [identity("example.org"), identity("me@example.net"), CONFIGURATION_SET]
    assert call.conditions["ses:fromaddress"] == ("news@mail.example.org",)
    assert call.conditions["ses:fromdisplayname"] == ("The Gazette",)


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


# ---------------------------------------------------------------------------------------- conditions

SENDER = "news@example.org"
# The template's grant to every function that sends: any identity, for mail from the sender address only.
SEND_GRANT = {
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["ses:SendEmail", "ses:SendRawEmail"],
            "Resource": [f"arn:aws:ses:eu-west-1:{ACCOUNT}:identity/*"],
            "Condition": {"StringEquals": {"ses:FromAddress": SENDER}},
        }
    ]
}
ANY_IDENTITY = Permission("ses:SendEmail", f"arn:aws:ses:eu-west-1:{ACCOUNT}:identity/me@example.net")


def sending(sender: str, *recipients: str) -> dict[str, tuple[str, ...]]:
    return {"ses:fromaddress": (sender,), "ses:recipients": recipients}


@pytest.mark.parametrize(
    ("condition", "conditions", "allowed"),
    [
        ({"StringEquals": {"ses:FromAddress": SENDER}}, sending(SENDER, "a@x.org"), True),
        ({"StringEquals": {"ses:FromAddress": SENDER}}, sending("other@example.org", "a@x.org"), False),
        ({"StringEquals": {"ses:FromAddress": SENDER}}, sending("News@example.org", "a@x.org"), False),  # case counts
        ({"StringEqualsIgnoreCase": {"ses:fromaddress": SENDER}}, sending("News@example.org"), True),
        ({"StringEquals": {"ses:FromAddress": SENDER}}, {}, False),  # a key the request does not set
        ({"StringEqualsIfExists": {"ses:FromAddress": SENDER}}, {}, True),
        ({"StringNotEquals": {"ses:FromAddress": SENDER}}, {}, True),
        ({"StringLike": {"ses:FromAddress": "news+*@example.org"}}, sending("news+a@example.org"), True),
        ({"StringNotLike": {"ses:FromAddress": "news+*@example.org"}}, sending("news+a@example.org"), False),
        ({"ForAllValues:StringLike": {"ses:Recipients": "*@x.org"}}, sending(SENDER, "a@x.org", "b@x.org"), True),
        ({"ForAllValues:StringLike": {"ses:Recipients": "*@x.org"}}, sending(SENDER, "a@x.org", "b@y.org"), False),
        ({"ForAnyValue:StringEquals": {"ses:Recipients": "b@y.org"}}, sending(SENDER, "a@x.org", "b@y.org"), True),
        ({"Null": {"ses:FromDisplayName": "true"}}, sending(SENDER), True),
        # Every test of a condition must hold.
        ({"StringEquals": {"ses:FromAddress": SENDER}, "StringLike": {"ses:Recipients": "*@y.org"}},
         sending(SENDER, "a@x.org"), False),
        # What the local stack cannot evaluate never allows: a key it does not read, an operator it does not
        # know, a policy variable, a single-valued test of several values.
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, sending(SENDER), False),
        ({"StringEquals": {"aws:PrincipalTag/team": "news"}}, sending(SENDER), False),
        ({"DateLessThan": {"ses:FromAddress": "2030-01-01"}}, sending(SENDER), False),
        ({"StringEquals": {"ses:FromAddress": "${aws:username}@example.org"}}, sending(SENDER), False),
        ({"StringEquals": {"ses:Recipients": "a@x.org"}}, sending(SENDER, "a@x.org", "b@x.org"), False),
    ],
)  # fmt: skip
def test_an_allow_with_a_condition_applies_only_when_the_condition_holds(
    condition: dict[str, Any], conditions: dict[str, tuple[str, ...]], allowed: bool
) -> None:
    statement = {"Effect": "Allow", "Action": "ses:SendEmail", "Resource": "*", "Condition": condition}

    assert allows([{"Statement": [statement]}], ANY_IDENTITY, conditions) is allowed


def test_a_deny_applies_unless_its_condition_is_known_to_fail() -> None:
    def denied_by(condition: dict[str, Any], conditions: dict[str, tuple[str, ...]]) -> bool:
        deny = {"Effect": "Deny", "Action": "ses:*", "Resource": "*", "Condition": condition}
        return not allows([SEND_GRANT, {"Statement": [deny]}], ANY_IDENTITY, conditions)

    assert denied_by({"StringNotEquals": {"ses:FromAddress": SENDER}}, sending("other@example.org"))
    assert not denied_by({"StringNotEquals": {"ses:FromAddress": SENDER}}, sending(SENDER))
    assert denied_by({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, sending(SENDER))  # cannot tell: it denies


def test_the_template_grant_lets_functions_send_from_the_sender_address_only() -> None:
    assert allows([SEND_GRANT], ANY_IDENTITY, sending(SENDER, "me@example.net"))
    assert not allows([SEND_GRANT], ANY_IDENTITY, sending("ceo@example.org", "me@example.net"))


# ---------------------------------------------------------------------------------------- signatures


def received(request: AWSPreparedRequest, body: bytes | None = None) -> Received:
    headers = {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in request.headers.items()}
    sent = request.body.read() if hasattr(request.body, "read") else request.body or b""  # an upload: a stream
    sent = sent.encode() if isinstance(sent, str) else sent
    return Received(request.method, request.url, headers, sent if body is None else body)


@pytest.mark.parametrize(
    ("service", "operation", "params"),
    [
        ("dynamodb", "get_item", {"TableName": "Articles", "Key": {"pk": {"S": "a"}}}),
        ("sqs", "send_message", {"QueueUrl": f"http://127.0.0.1:4566/{ACCOUNT}/q", "MessageBody": "x"}),
        ("sesv2", "get_email_identity", {"EmailIdentity": "me@example.net"}),  # a path encoded twice to sign
        ("s3", "get_object", {"Bucket": "uploads", "Key": "articles/a b é.md"}),  # a path signed as sent
        ("s3", "put_object", {"Bucket": "uploads", "Key": "articles/a.md", "Body": b"# hi"}),
        ("s3", "get_object_acl", {"Bucket": "uploads", "Key": "articles/a.md", "VersionId": "v1"}),
    ],
)
def test_a_signature_matches_only_with_the_secret_it_was_made_with(
    service: str, operation: str, params: dict[str, Any]
) -> None:
    request = received(wire_request(service, operation, endpoint="http://127.0.0.1:4566", **params))

    assert refusal(request, "secret") is None
    assert refusal(request, "another secret") is Refusal.MISMATCH


def test_a_changed_body_is_refused() -> None:
    item = wire_request("dynamodb", "get_item", endpoint="http://127.0.0.1:4566", TableName="A", Key={"pk": {"S": "a"}})
    upload = wire_request("s3", "put_object", endpoint="http://127.0.0.1:4566", Bucket="b", Key="k", Body=b"# hi")

    assert refusal(received(item, b'{"TableName": "B", "Key": {"pk": {"S": "a"}}}'), "secret") is Refusal.MISMATCH
    # S3 signs the body's hash header: a body that does not match it is refused on its own.
    assert refusal(received(upload, b"# changed"), "secret") is Refusal.PAYLOAD_MISMATCH


def test_a_presigned_url_is_checked_and_expires() -> None:
    s3 = boto3.client("s3", region_name="eu-west-1", endpoint_url="http://127.0.0.1:4566",
                      config=Config(signature_version="s3v4"), aws_access_key_id="ASIAEXAMPLEKEY000001",
                      aws_secret_access_key="secret", aws_session_token="token")  # fmt: skip
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "uploads", "Key": "articles/a b.md"})
    expired = s3.generate_presigned_url("get_object", Params={"Bucket": "uploads", "Key": "a.md"}, ExpiresIn=1)
    time.sleep(1.1)

    assert refusal(Received("GET", url, {}, b""), "secret") is None
    assert refusal(Received("GET", url, {}, b""), "another secret") is Refusal.MISMATCH
    assert refusal(Received("GET", url.replace("a%20b.md", "b.md"), {}, b""), "secret") is Refusal.MISMATCH
    assert refusal(Received("GET", expired, {}, b""), "secret") is Refusal.EXPIRED


@pytest.mark.parametrize(
    ("service", "operation", "params", "code", "status"),
    [
        ("s3", "get_object", {"Bucket": "b", "Key": "k"}, "SignatureDoesNotMatch", 403),
        ("dynamodb", "get_item", {"TableName": "A", "Key": {"pk": {"S": "a"}}}, "InvalidSignatureException", 400),
        ("sqs", "list_queues", {}, "SignatureDoesNotMatch", 403),
        ("sns", "list_topics", {}, "SignatureDoesNotMatch", 403),
        ("sesv2", "get_account", {}, "InvalidSignatureException", 403),
    ],
)
def test_a_wrong_signature_is_answered_with_the_services_own_error(
    service: str, operation: str, params: dict[str, Any], code: str, status: int
) -> None:
    call = read(wire_request(service, operation, **params))

    answered, headers, body = signature_refused(call, Refusal.MISMATCH)

    # As the SDK reads the answer.
    model = botocore.session.get_session().get_service_model(service)
    reply = {"status_code": answered, "headers": HeadersDict(headers), "body": body}
    parsed = create_parser(model.protocol).parse(reply, model.operation_model(call.operation).output_shape)
    assert (answered, parsed["Error"]["Code"]) == (status, code)


def test_a_wildcard_matches_any_character_a_newline_too_and_nothing_follows_a_literal() -> None:
    # API Gateway's source ARN holds the request's path, which may hold a decoded newline (`%0A`).
    route = "arn:aws:execute-api:us-east-1:123456789012:api/*/*/admin/*"

    assert wildcard_matches(route, "arn:aws:execute-api:us-east-1:123456789012:api/$default/GET/admin/a\nb")
    assert not wildcard_matches("arn:aws:s3:::bucket", "arn:aws:s3:::bucket\n")
