"""`newsdesk`: the editor's command-line tool (API tokens), for the deployed or the local stack.

newsdesk token create --name laptop --stack newsdesk     # deployed: tables from the stack's outputs
newsdesk token create --name laptop --local              # the stack that `make dev` runs
newsdesk token list | newsdesk token revoke <id>
newsdesk --stack newsdesk articles restore-feeds         # after an upgrade that adds a feed (see the README)
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


def _local_table(api_url: str, logical_id: str) -> str:
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
    return next(r["physical_name"] for r in resources["resources"] if r["logical_id"] == logical_id)


def _table(args: argparse.Namespace) -> str:
    """The table the command works on: the tokens table, or the articles table for `articles` commands."""
    logical_id, explicit = (
        ("ArticlesTable", args.articles_table) if args.area == "articles" else ("TokensTable", args.table)
    )
    if args.local:
        return _local_table(args.local_url, logical_id)
    if args.stack:
        return stack_output(args.stack, f"{logical_id}Name")
    if explicit:
        return str(explicit)
    option = (
        "--articles-table NAME (or ARTICLES_TABLE)" if args.area == "articles" else "--table NAME (or TOKENS_TABLE)"
    )
    raise SystemExit(f"say which table: --stack NAME, {option} or --local")


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
    articles = commands.add_parser("articles", help="published articles")
    articles.add_argument("--articles-table", default=os.environ.get("ARTICLES_TABLE"), help="articles table name")
    articles.add_subparsers(dest="action", required=True).add_parser(
        "restore-feeds", help="give every published article the feed entries it should have (safe to repeat)"
    )
    return parser


def _restore_feeds(table: str) -> None:
    from newsdesk.dal.articles import ArticleRepository
    from newsdesk.services.articles import ArticleService

    # Only feed entries are written: the publications table is never touched by this command.
    service = ArticleService(ArticleRepository(dynamodb_client(), table))
    print(f"restored the feed entries of {service.restore_feeds()} published articles")


def _tokens(args: argparse.Namespace, table: str) -> None:
    service = TokenService(TokenRepository(dynamodb_client(), table))
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    table = _table(args)  # first: for --local it also points boto3 at the local endpoint
    try:
        if args.area == "articles":
            _restore_feeds(table)
        else:
            _tokens(args, table)
    except NewsdeskError as exc:
        print(f"newsdesk: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
