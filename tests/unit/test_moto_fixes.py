"""local.aws.moto_fixes: DynamoDB transactions, streams, answers and memory, and SES's identities and sandbox, in the
embedded AWS behave as AWS's do."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import Item

from local.aws import moto_fixes
from local.iam.ses_identities import set_sandbox
from tests.support import times

REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto, corrected as the local stack corrects it."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    moto_fixes.apply()
    with mock_aws():
        yield


@pytest.fixture
def dynamodb(aws: None) -> Any:
    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(
        TableName="notes",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    return client


def stream_records(dynamodb: Any, position: str = "LATEST") -> Any:
    """A reader of the table's stream records from `position` (LATEST: the end, as the local event source is)."""
    # moto does not know the account-based endpoints botocore would pick for streams.
    streams = boto3.client("dynamodbstreams", region_name=REGION, config=Config(account_id_endpoint_mode="disabled"))
    arn = dynamodb.describe_table(TableName="notes")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType=position)["ShardIterator"]

    def read() -> list[dict[str, Any]]:
        nonlocal iterator
        answer = streams.get_records(ShardIterator=iterator)
        iterator = answer["NextShardIterator"]
        return list(answer["Records"])

    return read


def stream_reader(dynamodb: Any) -> Any:
    """A reader of the keys written after it was made, as the local event source reads them."""
    read = stream_records(dynamodb)
    return lambda: [record["dynamodb"]["Keys"]["pk"]["S"] for record in read()]


def put(key: str, *, only_if_new: bool = False) -> dict[str, Any]:
    operation: dict[str, Any] = {"TableName": "notes", "Item": {"pk": {"S": key}}}
    if only_if_new:
        operation["ConditionExpression"] = "attribute_not_exists(pk)"
    return {"Put": operation}


def test_a_cancelled_transaction_leaves_the_items_and_the_stream_as_they_were(dynamodb: Any) -> None:
    dynamodb.put_item(TableName="notes", Item={"pk": {"S": "taken"}, "v": {"S": "original"}})
    dynamodb.put_item(TableName="notes", Item={"pk": {"S": "guard"}})
    read = stream_reader(dynamodb)
    table = dynamodb_backends["123456789012"][REGION].tables["notes"]

    with pytest.raises(ClientError, match="TransactionCanceled"):
        dynamodb.transact_write_items(
            TransactItems=[put("new"), {"Update": {"TableName": "notes", "Key": {"pk": {"S": "taken"}},
                                                   "UpdateExpression": "SET v = :v",
                                                   "ExpressionAttributeValues": {":v": {"S": "changed"}}}},
                           put("guard", only_if_new=True)]
        )  # fmt: skip
    dynamodb.put_item(TableName="notes", Item={"pk": {"S": "after"}})

    items = {item["pk"]["S"]: item for item in dynamodb.scan(TableName="notes")["Items"]}
    assert set(items) == {"taken", "guard", "after"}
    assert items["taken"]["v"] == {"S": "original"}
    assert read() == ["after"]  # the cancelled writes left no stream records; the reader still reads
    assert dynamodb_backends["123456789012"][REGION].tables["notes"] is table  # no copy swapped in


def test_concurrent_conditional_writes_let_exactly_one_win(dynamodb: Any) -> None:
    def claim(_: int) -> bool:
        try:
            dynamodb.transact_write_items(TransactItems=[put("claim", only_if_new=True), put("other-side")])
        except ClientError:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        wins = list(pool.map(claim, range(40)))

    assert wins.count(True) == 1


def test_stream_records_are_freed_once_read_and_models_are_not_tracked(dynamodb: Any) -> None:
    read = stream_reader(dynamodb)
    tracked = len(Item.instances_tracked)  # type: ignore[attr-defined]
    for number in range(50):
        dynamodb.put_item(TableName="notes", Item={"pk": {"S": f"n{number}"}})

    assert len(read()) == 50
    assert read() == []
    shard = dynamodb_backends["123456789012"][REGION].tables["notes"].stream_shard
    assert shard is not None
    assert all(record is None for record in shard.items)  # what was read is freed
    assert len(Item.instances_tracked) == tracked  # type: ignore[attr-defined]


def test_a_record_is_freed_only_once_every_reader_of_the_stream_read_it(dynamodb: Any) -> None:
    # PublicationsTable's stream has two readers (fan-out and the events): the slower one still gets it all.
    fast, slow = stream_reader(dynamodb), stream_reader(dynamodb)
    for number in range(5):
        dynamodb.put_item(TableName="notes", Item={"pk": {"S": f"n{number}"}})

    assert len(fast()) == 5
    shard = dynamodb_backends["123456789012"][REGION].tables["notes"].stream_shard
    assert shard is not None
    assert all(record is not None for record in shard.items)  # the slow reader has not read them yet
    assert len(slow()) == 5
    assert fast() == slow() == []
    assert all(record is None for record in shard.items)


def test_a_queue_still_drops_what_outlived_its_retention_period(aws: None) -> None:
    from freezegun import freeze_time

    with freeze_time(times.now()) as clock:
        sqs = boto3.client("sqs", region_name=REGION)
        short = sqs.create_queue(QueueName="short", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
        long = sqs.create_queue(QueueName="long", Attributes={"MessageRetentionPeriod": "120"})["QueueUrl"]
        for url in (short, long):
            sqs.send_message(QueueUrl=url, MessageBody="sent at nine")
        clock.tick(61)

        expired = sqs.receive_message(QueueUrl=short).get("Messages", [])
        retained = sqs.receive_message(QueueUrl=long).get("Messages", [])

    assert (len(expired), len(retained)) == (0, 1)


def test_items_of_every_attribute_type_come_back_as_written_from_reads_and_the_stream(dynamodb: Any) -> None:
    item = {
        "pk": {"S": "every-type"},
        "text": {"S": "ünïcode ✓"}, "number": {"N": "-12.50"}, "blob": {"B": b"\x00\xffbytes"},
        "texts": {"SS": ["a", "b"]}, "numbers": {"NS": ["1", "2.5"]}, "blobs": {"BS": [b"\x01", b"\x02"]},
        "map": {"M": {"nested": {"L": [{"S": "x"}, {"NULL": True}, {"BOOL": False}]}}}, "empty": {"L": []},
    }  # fmt: skip
    dynamodb.put_item(TableName="notes", Item=item)

    got = dynamodb.get_item(TableName="notes", Key={"pk": {"S": "every-type"}})["Item"]
    queried = dynamodb.query(
        TableName="notes", KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "every-type"}}
    )
    missing = dynamodb.get_item(TableName="notes", Key={"pk": {"S": "nothing"}})
    [record] = stream_records(dynamodb, "TRIM_HORIZON")()

    normalised = {key: ({"SS": sorted(value["SS"])} if "SS" in value else value) for key, value in got.items()}
    assert normalised | {"numbers": item["numbers"], "blobs": item["blobs"]} == item
    assert (sorted(got["numbers"]["NS"]), sorted(got["blobs"]["BS"])) == (["1", "2.5"], [b"\x01", b"\x02"])
    assert (queried["Count"], queried["Items"], "LastEvaluatedKey" in queried) == (1, [got], False)
    assert "Item" not in missing
    assert record["dynamodb"]["NewImage"] == got
    assert record["dynamodb"]["ApproximateCreationDateTime"].tzinfo is not None


def test_a_queue_used_by_several_threads_at_once_hands_out_each_message_once_and_loses_none(aws: None) -> None:
    # SQS hands a message to one receiver until its visibility timeout ends, and a deleted message stays
    # deleted. The local stack sends to, receives from and deletes from one queue on several threads at
    # once (as Lambda's pollers and the functions do); moto's receive and delete took no lock.
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="events", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    sent = [str(n) for n in range(800)]

    def send(first: int) -> None:
        for start in range(first, len(sent), 40):
            entries = [{"Id": str(n), "MessageBody": sent[n]} for n in range(start, start + 10)]
            sqs.send_message_batch(QueueUrl=url, Entries=entries)

    def receive_and_delete(_: int) -> list[str]:
        bodies: list[str] = []
        idle = 0
        while idle < 3:
            received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            messages = received.get("Messages", [])
            idle = 0 if messages else idle + 1
            bodies += [message["Body"] for message in messages]
            if messages:
                entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
                assert not sqs.delete_message_batch(QueueUrl=url, Entries=entries).get("Failed")
        return bodies

    with ThreadPoolExecutor(max_workers=8) as pool:
        senders = [pool.submit(send, first) for first in range(0, 40, 10)]
        receivers = [pool.submit(receive_and_delete, n) for n in range(4)]
        for sender in senders:
            sender.result()
        received = [body for receiver in receivers for body in receiver.result()]
    left = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]

    assert sorted(received, key=int) == sent
    assert (left["ApproximateNumberOfMessages"], left["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")


def test_queries_page_through_a_partition_and_an_index_in_key_order(aws: None) -> None:
    # moto sorted the whole table for every Query; the local stack reads the partition (or, for an index,
    # filters the items unsorted and lets moto sort the matches): the answers must stay DynamoDB's.
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(
        TableName="ledger",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "state")],
        GlobalSecondaryIndexes=[{
            "IndexName": "by-state", "Projection": {"ProjectionType": "ALL"},
            "KeySchema": [{"AttributeName": "state", "KeyType": "HASH"},
                          {"AttributeName": "sk", "KeyType": "RANGE"}],
        }],
        BillingMode="PAY_PER_REQUEST",
    )  # fmt: skip
    for n in reversed(range(60)):  # written out of order, in three partitions
        item = {"pk": {"S": f"d{n % 3}"}, "sk": {"S": f"to#{n:03d}"}, "state": {"S": ("sent", "failed")[n % 2]}}
        dynamodb.put_item(TableName="ledger", Item=item)

    def pages(forward: bool, **query: Any) -> list[str]:
        keys, start = [], None
        while True:
            more: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
            answer = dynamodb.query(TableName="ledger", Limit=7, ScanIndexForward=forward, **query, **more)
            keys += [item["sk"]["S"] for item in answer["Items"]]
            if not (start := answer.get("LastEvaluatedKey")):
                return keys

    partition = {"KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": {":pk": {"S": "d1"}}}
    index = {"IndexName": "by-state", "KeyConditionExpression": "#s = :s",
             "ExpressionAttributeNames": {"#s": "state"},
             "ExpressionAttributeValues": {":s": {"S": "failed"}}}  # fmt: skip
    in_d1 = [f"to#{n:03d}" for n in range(60) if n % 3 == 1]
    failed = [f"to#{n:03d}" for n in range(60) if n % 2 == 1]

    assert pages(True, **partition) == in_d1
    assert pages(False, **partition) == in_d1[::-1]
    assert pages(True, **index) == failed
    assert pages(False, **index) == failed[::-1]
    absent = {"KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": {":pk": {"S": "nobody"}}}
    assert pages(True, **absent) == []


def test_a_query_on_a_table_without_a_sort_key_finds_its_one_item(dynamodb: Any) -> None:
    for key in ("a", "b", "c"):
        dynamodb.put_item(TableName="notes", Item={"pk": {"S": key}, "v": {"S": key.upper()}})

    def query(key: str) -> list[dict[str, Any]]:
        values = {":pk": {"S": key}}
        return list(
            dynamodb.query(TableName="notes", KeyConditionExpression="pk = :pk", ExpressionAttributeValues=values)[
                "Items"
            ]
        )

    assert query("b") == [{"pk": {"S": "b"}, "v": {"S": "B"}}]
    assert query("nobody") == []


# ------------------------------------------------------------------------------------------------ SES


def send(ses: Any, sender: str, recipient: str) -> str:
    raw = f"From: {sender}\r\nTo: {recipient}\r\nSubject: hi\r\n\r\nhi".encode()
    reply = ses.send_email(
        FromEmailAddress=sender, Destination={"ToAddresses": [recipient]}, Content={"Raw": {"Data": raw}}
    )
    return str(reply["MessageId"])


def rejection(ses: Any, sender: str, recipient: str) -> dict[str, str]:
    with pytest.raises(ClientError) as rejected:
        send(ses, sender, recipient)
    return dict(rejected.value.response["Error"])


def not_verified(*addresses: str) -> dict[str, str]:
    message = "Email address is not verified. The following identities failed the check in region US-EAST-1: "
    return {"Code": "MessageRejected", "Message": message + ", ".join(addresses)}


def test_ses_sends_from_any_address_a_verified_identity_covers(aws: None) -> None:
    ses = boto3.client("sesv2", region_name=REGION)
    ses.create_email_identity(EmailIdentity="example.org")

    send(ses, "news@example.org", "anyone@example.net")
    send(ses, "news@mail.example.org", "anyone@example.net")  # a parent domain covers its subdomains
    assert rejection(ses, "news@example.com", "anyone@example.net") == not_verified("news@example.com")


def test_in_the_sandbox_ses_sends_only_to_addresses_a_verified_identity_covers(aws: None) -> None:
    ses = boto3.client("sesv2", region_name=REGION)
    for identity in ("example.org", "me@example.net"):
        ses.create_email_identity(EmailIdentity=identity)
    send(ses, "news@example.org", "anyone@example.com")  # production access: anyone

    set_sandbox("123456789012", REGION, True)

    send(ses, "news@example.org", "me@example.net")
    send(ses, "news@example.org", "colleague@sub.example.org")
    send(ses, "news@example.org", "bounce+1@simulator.amazonses.com")  # SES's mailbox simulator
    assert rejection(ses, "news@example.org", "you@example.net") == not_verified("you@example.net")
    assert rejection(ses, "news@example.com", "you@example.net") == not_verified("news@example.com", "you@example.net")


def test_an_identity_is_deleted_alone(aws: None) -> None:
    ses = boto3.client("sesv2", region_name=REGION)
    ses.create_email_identity(EmailIdentity="example.org")

    boto3.client("ses", region_name=REGION).delete_identity(Identity="news@example.org")  # covered, not an identity

    assert [i["IdentityName"] for i in ses.list_email_identities()["EmailIdentities"]] == ["example.org"]
