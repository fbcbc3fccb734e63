"""Every test runs each function with only its IAM role: a policy that lacks an action the code uses fails.

This is the proof that the class of defect is closed: take one action out of the mailer's role, and the
newsletter the code would have sent is refused, as AWS would refuse it.
"""

from __future__ import annotations

import copy
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from local.aws.embedded import start_moto
from local.iam.policies import AccessPolicy, acting_as
from local.lambda_runtime.functions import InProcessFunctions
from local.stack import build_stack, local_resolver
from local.template.model import ACCOUNT_ID, Template
from local.template.resolver import LOCAL_SENDER, Resolver
from tests.integration.conftest import Stack, running_stack
from tests.integration.test_newsletter import ARTICLE, add_subscribers, newsletters, progress, publish_new_article
from tests.integration.test_subscribers import confirmed, subscribe
from tests.support.mail import mail_to, outbox

REGION = "us-east-1"


def without_action(template: Template, function_id: str, action: str) -> Template:
    """A copy of the template whose function may no longer perform `action`."""
    data = copy.deepcopy(template.data)
    role = data["Resources"][function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    for policy in data["Resources"][role]["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            statement["Action"] = [name for name in actions if name != action]
    return Template(data=data, root=template.root)


@pytest.fixture
def stack_without_claims(monkeypatch: pytest.MonkeyPatch, template: Template, resolver: Resolver) -> Iterator[Stack]:
    narrowed = without_action(template, "MailerFunction", "dynamodb:PutItem")
    narrowed_resolver = Resolver(narrowed, region=resolver.region, parameter_overrides=resolver.parameter_overrides)
    with running_stack(monkeypatch, narrowed, narrowed_resolver, InProcessFunctions(narrowed, narrowed_resolver)) as s:
        yield s


def test_a_role_without_an_action_the_code_uses_is_refused_like_on_aws(stack_without_claims: Stack) -> None:
    stack = stack_without_claims
    add_subscribers(2)

    publish_new_article(stack)
    stack.drain(skip=("MailerFunction",))
    with pytest.raises(TimeoutError):  # the batches fail, come back and fail again
        stack.sources.drain(timeout=3)

    refused = {(d.function_id, d.action, d.resource) for d in stack.policy.take_denials()}
    deliveries = f"arn:aws:dynamodb:us-east-1:123456789012:table/{stack.table('DeliveriesTable')}"
    assert refused == {("MailerFunction", "dynamodb:PutItem", deliveries)}
    assert outbox() == []


# ------------------------------------------------------------------------------------- the SES sandbox

READER = "me@example.net"  # the deployer's own address, verified in SES (docs/deploy.md, step 5)


def verify(address: str) -> None:
    """Verify an address identity, as the deployer does in the SES console (the administrator here)."""
    boto3.client("sesv2").create_email_identity(EmailIdentity=address)


def send_as_mailer(stack: Stack, recipient: str, *, sender: str = LOCAL_SENDER) -> None:
    ses = boto3.client("sesv2")
    raw = {"Raw": {"Data": f"From: {sender}\r\nTo: {recipient}\r\nSubject: hi\r\n\r\nhi".encode()}}
    with acting_as("MailerFunction"):
        ses.send_email(FromEmailAddress=sender, Destination={"ToAddresses": [recipient]}, Content=raw,
                       ConfigurationSetName=stack.resolver.physical_name("EmailConfigurationSet"))  # fmt: skip


def with_the_former_send_grant(template: Template) -> Template:
    """A copy of the template whose functions may send from the sender's domain identity only (the grant
    before the sandbox was allowed for)."""
    data = copy.deepcopy(template.data)
    domain = ["arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${Domain}",
              {"Domain": {"Fn::Select": [1, {"Fn::Split": ["@", {"Ref": "SenderAddress"}]}]}}]  # fmt: skip
    for resource in data["Resources"].values():
        for policy in resource.get("Properties", {}).get("Policies") or []:
            for statement in policy["PolicyDocument"]["Statement"] if resource["Type"] == "AWS::IAM::Role" else []:
                if "ses:SendEmail" in statement["Action"]:
                    statement.pop("Condition")
                    statement["Resource"][0] = {"Fn::Sub": domain}
    return Template(data=data, root=template.root)


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch, template: Template, resolver: Resolver, functions: InProcessFunctions
            ) -> Iterator[Stack]:  # fmt: skip
    """The stack with SES in the sandbox, as a new account has it."""
    with running_stack(monkeypatch, template, resolver, functions, ses_sandbox=True) as running:
        yield running
    refused = running.policy.take_denials()
    assert not refused, f"AWS would refuse these calls (the function's role lacks them): {refused}"


def test_in_the_sandbox_your_own_verified_address_subscribes_and_gets_the_newsletter(sandbox: Stack) -> None:
    verify(READER)

    confirmed(sandbox, READER)  # the confirmation email came, and its link confirmed
    confirmed(sandbox, "success@simulator.amazonses.com")  # SES's mailbox simulator needs no identity
    add_subscribers(1, prefix="unverified")  # confirmed before, on a domain the account has not verified
    article = publish_new_article(sandbox)
    sandbox.drain()

    assert sorted(mail.to for mail in newsletters(ARTICLE["title"])) == [READER, "success@simulator.amazonses.com"]
    assert progress(sandbox, article["id"])["failed"] == 1  # SES rejected it: failed for good, explained


def test_in_the_sandbox_a_grant_on_the_senders_domain_alone_is_refused_like_on_aws(
    monkeypatch: pytest.MonkeyPatch, template: Template, resolver: Resolver
) -> None:
    former = with_the_former_send_grant(template)
    former_resolver = Resolver(former, region=resolver.region, parameter_overrides=resolver.parameter_overrides)
    functions = InProcessFunctions(former, former_resolver)
    with running_stack(monkeypatch, former, former_resolver, functions, ses_sandbox=True) as stack:
        verify(READER)

        subscribe(stack, READER)

        refused = {(d.function_id, d.action, d.resource) for d in stack.policy.take_denials()}
        assert refused == {("PublicFunction", "ses:SendEmail", f"arn:aws:ses:us-east-1:{ACCOUNT_ID}:identity/{READER}")}
        assert mail_to(READER) == []


def test_in_the_sandbox_ses_rejects_a_recipient_no_verified_identity_covers(sandbox: Stack) -> None:
    verify(READER)

    with pytest.raises(ClientError) as rejected:
        send_as_mailer(sandbox, "stranger@example.com")
    send_as_mailer(sandbox, READER)

    assert rejected.value.response["Error"] == {
        "Code": "MessageRejected",
        "Message": "Email address is not verified. The following identities failed the check in region US-EAST-1: "
        "stranger@example.com",
    }
    assert [mail.to for mail in outbox()] == [READER]


def test_a_send_from_another_address_than_the_sender_is_refused(stack: Stack) -> None:
    with pytest.raises(ClientError) as refused:
        send_as_mailer(stack, READER, sender="ceo@newsdesk.localhost")  # a verified domain, another address

    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    denials = [(d.function_id, d.action, d.resource) for d in stack.policy.take_denials()]
    assert denials == [
        ("MailerFunction", "ses:SendEmail", f"arn:aws:ses:us-east-1:{ACCOUNT_ID}:identity/newsdesk.localhost")
    ]
    assert outbox() == []


# ----------------------------------------------------------------------- the embedded AWS, over HTTP


@dataclass
class Embedded:
    endpoint: str
    resolver: Resolver
    policy: AccessPolicy

    def client(self, service: str, function_id: str | None = None, **credentials: str) -> Any:
        """A client of the administrator, of a function (its own credentials), or of the credentials given."""
        if function_id is not None:
            credentials = self.policy.credentials[function_id].as_dict() | credentials
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=credentials.get("access_key_id", "testing"),
                            aws_secret_access_key=credentials.get("secret_access_key", "testing"),
                            aws_session_token=credentials.get("session_token"))  # fmt: skip


@pytest.fixture(scope="class")
def embedded() -> Iterator[Embedded]:
    """The stack's resources in the embedded AWS over HTTP, as `make dev` serves it, with no function running."""
    policy = AccessPolicy(ACCOUNT_ID)
    moto, endpoint = start_moto(0, policy=policy)
    try:
        resolver = local_resolver(api_url="http://127.0.0.1:3000", region=REGION)
        build_stack(resolver, endpoint=endpoint, policy=policy)
        yield Embedded(endpoint, resolver, policy)
    finally:
        moto.stop()


def refused_with(call: Any) -> str:
    with pytest.raises(ClientError) as refused:
        call()
    return str(refused.value.response["Error"]["Code"])


def moto_api_status(endpoint: str, credentials: Credentials | None) -> int:
    """The status of a request to moto's own API, signed with `credentials` (None: unsigned)."""
    request = AWSRequest(method="GET", url=f"{endpoint}/moto-api/config")
    if credentials is not None:
        SigV4Auth(credentials, "moto", REGION).add_auth(request)
    try:
        with urllib.request.urlopen(urllib.request.Request(request.url, headers=dict(request.headers))) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return error.code


class TestTheEmbeddedAws:
    def test_a_function_may_read_an_upload_but_not_its_acl(self, embedded: Embedded) -> None:
        bucket = embedded.resolver.physical_name("UploadsBucket")
        version = embedded.client("s3").put_object(Bucket=bucket, Key="articles/a.md", Body=b"# A")["VersionId"]
        s3 = embedded.client("s3", "UploadFunction")  # may GetObjectVersion on articles/*, nothing more

        read = s3.get_object(Bucket=bucket, Key="articles/a.md", VersionId=version)["Body"].read()
        with pytest.raises(ClientError) as refused:
            s3.get_object_acl(Bucket=bucket, Key="articles/a.md")

        assert read == b"# A"
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
        denials = [(d.action, d.resource) for d in embedded.policy.take_denials()]
        assert denials == [("s3:GetObjectAcl", f"arn:aws:s3:::{bucket}/articles/a.md")]

    def test_a_request_signed_with_a_wrong_secret_or_token_is_refused(self, embedded: Embedded) -> None:
        table, bucket = (
            embedded.resolver.physical_name("ArticlesTable"),
            embedded.resolver.physical_name("UploadsBucket"),
        )
        key = {"pk": {"S": "nothing"}}
        wrong = "not the secret"
        dynamodb = embedded.client("dynamodb", "UploadFunction")
        wrong_dynamodb = embedded.client("dynamodb", "UploadFunction", secret_access_key=wrong)
        wrong_s3 = embedded.client("s3", "UploadFunction", secret_access_key=wrong)
        wrong_administrator = embedded.client("sqs", secret_access_key=wrong)
        wrong_token = embedded.client("dynamodb", "UploadFunction", session_token="another")

        assert "Item" not in dynamodb.get_item(TableName=table, Key=key)  # allowed, with the right secret
        assert refused_with(lambda: wrong_dynamodb.get_item(TableName=table, Key=key)) == "InvalidSignatureException"
        assert refused_with(lambda: wrong_s3.get_object(Bucket=bucket, Key="articles/a.md")) == "SignatureDoesNotMatch"
        assert refused_with(wrong_administrator.list_queues) == "SignatureDoesNotMatch"
        assert refused_with(lambda: wrong_token.get_item(TableName=table, Key=key)) == "UnrecognizedClientException"
        assert embedded.policy.take_denials() == []

    def test_moto_api_answers_the_administrator_only(self, embedded: Embedded) -> None:
        function = embedded.policy.credentials["UploadFunction"]
        as_function = Credentials(function.access_key_id, function.secret_access_key, function.session_token)

        assert moto_api_status(embedded.endpoint, None) == 403
        assert moto_api_status(embedded.endpoint, as_function) == 403
        assert moto_api_status(embedded.endpoint, Credentials("testing", "not the secret")) == 403
        assert moto_api_status(embedded.endpoint, Credentials("testing", "testing")) // 100 == 2  # answered
