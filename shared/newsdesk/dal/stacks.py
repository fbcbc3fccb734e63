"""Reads a deployed stack's outputs and resources, so the command-line tool can find its tables and its secret by
stack name."""

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


def stack_resource(stack_name: str, logical_id: str) -> str:
    """The physical id of one of the stack's resources (a table's name, a secret's ARN)."""
    try:
        found = boto3.client("cloudformation").describe_stack_resource(
            StackName=stack_name, LogicalResourceId=logical_id
        )
    except ClientError as exc:
        raise NotFound(f"cannot read {logical_id} of stack {stack_name!r}: {exc}") from exc
    return str(found["StackResourceDetail"]["PhysicalResourceId"])
