"""docs/deploy.md says what `sam delete` leaves behind, exactly, and its command to remove the versioned
uploads bucket for good works."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local.template.model import Template

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "deploy.md"


def kept_in_the_guide() -> list[str]:
    """The logical ids in the first column of the table under "What `sam delete` keeps"."""
    text = GUIDE.read_text(encoding="utf-8")
    section = text[text.index("### What `sam delete` keeps") :]
    section = section[: section.index("\n#", 1)]
    return re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE)


def test_the_guide_lists_exactly_the_resources_sam_delete_keeps(template: Template) -> None:
    kept = sorted(
        logical_id for logical_id, body in template.data["Resources"].items() if body.get("DeletionPolicy") == "Retain"
    )

    assert len(kept) >= 10  # the tables, the bucket and the secret: a check that looks at something
    assert sorted(kept_in_the_guide()) == kept


def bucket_removal_code() -> str:
    """The Python the guide runs (`.venv/bin/python - <bucket> <<'EOF' ... EOF`) to delete the versioned bucket."""
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index(".venv/bin/python - <bucket> <<'EOF'\n")
    body = text[start:].split("\n", 1)[1]
    return body[: body.index("\nEOF\n")]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> object:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield object()


def test_the_guides_command_deletes_a_versioned_bucket_with_all_its_versions(
    aws: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = boto3.client("s3")
    bucket = "newsdesk-uploads-kept"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    # Old versions and delete markers, as uploads and their expiry leave them.
    for number in range(40):
        s3.put_object(Bucket=bucket, Key=f"subscribers/{number}.csv", Body=b"email\n")
        s3.put_object(Bucket=bucket, Key=f"subscribers/{number}.csv", Body=b"email\nada@example.org\n")
    for number in range(0, 40, 2):
        s3.delete_object(Bucket=bucket, Key=f"subscribers/{number}.csv")
    # `aws s3 rb --force` deletes the current objects, then the bucket, which S3 refuses: versions remain.
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for found in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=found["Key"])
    with pytest.raises(ClientError, match="BucketNotEmpty"):
        s3.delete_bucket(Bucket=bucket)

    monkeypatch.setattr(sys, "argv", ["-", bucket])
    exec(compile(bucket_removal_code(), "docs/deploy.md", "exec"), {"__name__": "__main__"})

    assert bucket not in [found["Name"] for found in s3.list_buckets()["Buckets"]]
