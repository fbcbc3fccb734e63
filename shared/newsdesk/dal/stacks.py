"""Reads a deployed stack's outputs, so the command-line tool can find its tables by stack name."""

from __future__ import annotations

import boto3
from botocore.exceptions import ClientError

from newsdesk.errors import NotFound


def stack_output(stack_name: str, output_key: str) -> str:
    try:
        stacks = boto3.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        raise NotFound(f"cannot read stack {stack_name!r}: {exc}") from exc
    for output in stacks[0].get("Outputs", []):
        if output["OutputKey"] == output_key:
            return str(output["OutputValue"])
    raise NotFound(f"stack {stack_name!r} has no output {output_key!r}")
