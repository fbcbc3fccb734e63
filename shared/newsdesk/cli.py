"""`newsdesk`: the editor's command-line tool (API tokens), for the deployed or the local stack.

newsdesk token create --name laptop --stack newsdesk     # deployed: tables from the stack's outputs
newsdesk token create --name laptop --local              # the stack that `make dev` runs
newsdesk token list | newsdesk token revoke <id>
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from collections.abc import Sequence

from newsdesk.dal.dynamodb import dynamodb_client
from newsdesk.dal.stacks import stack_output
from newsdesk.dal.tokens import TokenRepository
from newsdesk.errors import NewsdeskError
from newsdesk.services.tokens import TokenService


def _local_tokens_table(api_url: str) -> str:
    """Ask the local runner where its tables live, and point boto3 at its embedded AWS endpoint."""
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/_local/resources", timeout=5) as reply:  # noqa: S310
            resources = json.load(reply)
    except OSError as exc:
        raise SystemExit(f"newsdesk: no local stack answers at {api_url} ({exc}); start it with `make dev`") from exc
    os.environ["AWS_ENDPOINT_URL"] = resources["aws_endpoint"]
    os.environ.setdefault("AWS_DEFAULT_REGION", resources.get("region", "us-east-1"))
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(key, "testing")
    return next(r["physical_name"] for r in resources["resources"] if r["logical_id"] == "TokensTable")


def _tokens_table(args: argparse.Namespace) -> str:
    if args.local:
        return _local_tokens_table(args.local_url)
    if args.stack:
        return stack_output(args.stack, "TokensTableName")
    if args.table:
        return str(args.table)
    raise SystemExit("say which tokens table: --stack NAME, --table NAME (or TOKENS_TABLE) or --local")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsdesk", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--stack", help="name of the deployed CloudFormation stack")
    where.add_argument("--table", default=os.environ.get("TOKENS_TABLE"), help="tokens table name")
    where.add_argument("--local", action="store_true", help="use the local stack started by `make dev`")
    parser.add_argument(
        "--local-url",
        default=os.environ.get("NEWSDESK_LOCAL_URL", f"http://127.0.0.1:{os.environ.get('PORT', '3000')}"),
        help="address of the local stack (default: %(default)s)",
    )
    commands = parser.add_subparsers(dest="area", required=True)
    token = commands.add_parser("token", help="editor API tokens").add_subparsers(dest="action", required=True)
    create = token.add_parser("create", help="mint a token; it is shown once")
    create.add_argument("--name", required=True, help="who or what the token is for")
    token.add_parser("list", help="list tokens (ids and names, never the secrets)")
    revoke = token.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("token_id")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    table = _tokens_table(args)  # first: for --local it also points boto3 at the local endpoint
    service = TokenService(TokenRepository(dynamodb_client(), table))
    try:
        if args.action == "create":
            issued = service.create(args.name)
            print(f"token {issued.token_id} ({issued.name}) - store it now, it is not shown again:")
            print(issued.token)
        elif args.action == "list":
            for token in service.list():
                state = "revoked" if token.revoked else "active"
                print(f"{token.token_id}  {state:8}  {token.created_at:%Y-%m-%d %H:%M}  {token.name}")
        else:
            revoked = service.revoke(args.token_id)
            print(f"revoked {revoked.token_id} ({revoked.name})")
    except NewsdeskError as exc:
        print(f"newsdesk: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
