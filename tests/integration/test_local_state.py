"""NEWSDESK_STATE_DIR (local.aws.persistence): what one local stack saved, another one built from the same template
finds, whatever its resources' physical names: items (binary values too), every version of every object and
the delete markers, the messages waiting in its queues, the signing secret."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.aws.embedded import client, start_moto
from local.aws.persistence import StateFolder, StateFolderError, state_folder
from local.stack import build_stack, local_resolver
from local.template.resolver import Resolver

REGION = "us-east-1"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    moto, url = start_moto(0)
    try:
        yield url
    finally:
        moto.stop()


def built(endpoint: str, prefix: str) -> Resolver:
    resolver = local_resolver(api_url="http://127.0.0.1:3000", region=REGION, prefix=prefix)
    build_stack(resolver, endpoint=endpoint)
    return resolver


def queue_url(endpoint: str, resolver: Resolver, logical_id: str) -> str:
    sqs = client("sqs", endpoint, REGION)
    return str(sqs.get_queue_url(QueueName=resolver.physical_name(logical_id))["QueueUrl"])


def secret(endpoint: str, resolver: Resolver) -> str:
    answer = client("secretsmanager", endpoint, REGION).get_secret_value(
        SecretId=resolver.get_att("SigningSecret", "Arn")
    )
    return str(answer["SecretString"])


def empty(s3: Any, bucket: str) -> None:
    listed = s3.list_object_versions(Bucket=bucket)
    for version in listed.get("Versions", []) + listed.get("DeleteMarkers", []):
        s3.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])


def test_a_new_stack_finds_what_the_last_one_saved(endpoint: str, tmp_path: Path) -> None:
    # Given a stack with an item holding binary values, a file with two versions, a deleted file and a message
    first = built(endpoint, "saved-a")
    dynamodb, s3, sqs = (client(service, endpoint, REGION) for service in ("dynamodb", "s3", "sqs"))
    item = {"token_hash": {"S": "h1"}, "raw": {"B": b"\x00\xff"}, "many": {"BS": [b"a", b"b"]}, "n": {"N": "3"}}
    dynamodb.put_item(TableName=first.physical_name("TokensTable"), Item=item)
    bucket = first.physical_name("UploadsBucket")
    for body in (b"first", b"second"):
        s3.put_object(Bucket=bucket, Key="articles/a.md", Body=body, ContentType="text/markdown")
    s3.put_object(Bucket=bucket, Key="subscribers/gone.csv", Body=b"email\n")
    s3.delete_object(Bucket=bucket, Key="subscribers/gone.csv")
    attributes = {
        "kind": {"DataType": "String", "StringValue": "chunk"},
        "b": {"DataType": "Binary", "BinaryValue": b"\x01"},
    }
    sqs.send_message(QueueUrl=queue_url(endpoint, first, "ImportQueue"), MessageBody='{"row": 251}',
                     MessageAttributes=attributes)  # fmt: skip
    saving = StateFolder(tmp_path, first, endpoint)
    assert saving.restore().saved_at is None  # an empty folder: nothing to put back
    saving.dev_token = "the-printed-token-0123"
    assert saving.save()
    assert not saving.save()  # nothing changed: the file is not written again
    saving.close()

    # When another stack (other physical names, but the bucket's is fixed: emptied, as a new moto's) starts
    empty(s3, bucket)
    second = built(endpoint, "saved-b")
    restoring = StateFolder(tmp_path, second, endpoint)
    restored = restoring.restore()

    # Then it holds the same data
    assert (restored.items, restored.objects, restored.messages) == (1, 4, 1)
    assert restoring.dev_token == "the-printed-token-0123"
    [kept] = dynamodb.scan(TableName=second.physical_name("TokensTable"))["Items"]
    assert kept == item
    bucket = second.physical_name("UploadsBucket")
    assert s3.get_object(Bucket=bucket, Key="articles/a.md")["Body"].read() == b"second"
    versions = s3.list_object_versions(Bucket=bucket, Prefix="articles/a.md")["Versions"]
    assert sorted(s3.get_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
                  for v in versions) == [b"first", b"second"]  # fmt: skip
    gone = s3.list_object_versions(Bucket=bucket, Prefix="subscribers/gone.csv")
    assert [marker["IsLatest"] for marker in gone["DeleteMarkers"]] == [True]
    [message] = sqs.receive_message(QueueUrl=queue_url(endpoint, second, "ImportQueue"),
                                    MessageAttributeNames=["All"])["Messages"]  # fmt: skip
    assert message["Body"] == '{"row": 251}'
    assert message["MessageAttributes"]["kind"]["StringValue"] == "chunk"
    assert message["MessageAttributes"]["b"]["BinaryValue"] == b"\x01"
    assert secret(endpoint, second) == secret(endpoint, first)  # links signed by the first stack still hold
    restoring.close()


def test_a_folder_is_never_overwritten_by_a_stack_that_could_not_read_it(endpoint: str, tmp_path: Path) -> None:
    resolver = built(endpoint, "saved-c")
    (tmp_path / "snapshot.json").write_text("{not json")

    folder = StateFolder(tmp_path, resolver, endpoint)
    with pytest.raises(StateFolderError, match="not the JSON"):
        folder.restore()
    assert not folder.save()
    assert (tmp_path / "snapshot.json").read_text() == "{not json"
    folder.close()

    (tmp_path / "snapshot.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(StateFolderError, match="format 1"):
        StateFolder(tmp_path, resolver, endpoint).restore()


def test_two_stacks_never_share_a_folder(endpoint: str, tmp_path: Path) -> None:
    resolver = built(endpoint, "saved-d")
    first = StateFolder(tmp_path, resolver, endpoint)
    first.restore()

    with pytest.raises(StateFolderError, match="another running local stack"):
        StateFolder(tmp_path, resolver, endpoint).restore()
    first.close()


def test_without_the_variable_nothing_is_kept(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    monkeypatch.delenv("NEWSDESK_STATE_DIR", raising=False)
    resolver: Any = None

    assert state_folder(resolver, endpoint) is None
