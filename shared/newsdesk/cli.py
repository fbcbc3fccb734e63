"""`newsdesk`: the editor's command-line tool, for a deployed stack or the one `make dev` runs.

examples:
  newsdesk --local token create --name laptop          # the stack `make dev` runs, whatever its PORT
  newsdesk token create --name laptop --stack newsdesk # a deployed stack, by name (options go anywhere)
  newsdesk --stack newsdesk person create --name "Ada Lovelace" --email ada@example.org --role editor
  newsdesk --stack newsdesk token create --person <id> # Ada's token: it acts in her role
  newsdesk --stack newsdesk token create --name ci --role contributor
  newsdesk --stack newsdesk person list
  newsdesk --stack newsdesk --region eu-west-1 --profile prod token list
  newsdesk --stack newsdesk token revoke <id>
  newsdesk --stack newsdesk articles restore-feeds     # after an upgrade that adds a feed (see the README)
  newsdesk --local delivery watch <article-id>         # a newsletter's progress, live
  newsdesk --stack newsdesk import status              # the newest subscriber import's progress, live
  newsdesk --stack newsdesk keys rotate                # a new signing key; links already sent keep working
  newsdesk --stack newsdesk keys list                  # the signing keys: ids, which is current, since when
  newsdesk --stack newsdesk keys retire 0              # remove an old key (30 days after it was superseded)

where the stack is:
  --local       the running `make dev` (each one writes where it is, and its editor token, to a state
                folder); with several running, --port names one; --local-url (or NEWSDESK_LOCAL_URL)
                names another address
  --stack NAME  a deployed stack: its tables and its API address (ApiUrl) come from its outputs, with
                the usual AWS credentials (--profile, --region, or AWS_PROFILE, AWS_DEFAULT_REGION)
  --table NAME  a tokens table by name (token commands only; ARTICLES_TABLE for articles); PEOPLE_TABLE
                and AUDIT_TABLE name the people table and the audit trail

A token made with --name alone acts as an admin (as every token did before people and roles); --role
limits it. A person's token acts in the person's role (at most --role). Changes to people and tokens are
recorded in the audit trail as `cli:<your user name>`.

`keys` reads and writes the stack's SigningSecret (Secrets Manager) with your credentials; --secret ARN (or
SIGNING_SECRET_ARN) and --webhooks-table NAME (or WEBHOOKS_TABLE) name them without a stack.

`delivery` and `import` call the editor API: with an editor token from NEWSDESK_TOKEN (on the local
stack, the one it printed at start is used when NEWSDESK_TOKEN is unset), at --api-url (or
NEWSDESK_API_URL) when given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from newsdesk.errors import NewsdeskError
from newsdesk.local_state import LocalStackState, running_stacks, state_dir
from newsdesk.models.people import Actor, CreatePersonRequest, CreateTokenRequest, Role

if TYPE_CHECKING:
    from newsdesk.models.keys import Keyring
    from newsdesk.services.people import PeopleService
    from newsdesk.services.tokens import TokenService

WHERE_OPTIONS = ("local", "stack", "table", "local_url", "port", "api_url", "region", "profile")


def _local_stack(args: argparse.Namespace) -> tuple[str, LocalStackState | None]:
    """The local stack's address (and its state entry, when it wrote one): the one named by --local-url, else
    the running stack (the one on --port, when several run). Said on stderr, once: stdout is the answer."""
    chosen: tuple[str, LocalStackState | None] | None = getattr(args, "chosen_local", None)
    if chosen is not None:
        return chosen
    explicit = args.local_url or os.environ.get("NEWSDESK_LOCAL_URL")
    if explicit:
        chosen = (str(explicit).rstrip("/"), None)
    else:
        state = _running_stack(args.port)
        chosen = (state.api_url, state)
    print(f"newsdesk: using the local stack at {chosen[0]}", file=sys.stderr)
    args.chosen_local = chosen
    return chosen


def _running_stack(port: int | None) -> LocalStackState:
    stacks = running_stacks()
    where = ", ".join(state.api_url for state in stacks)
    if port is not None:
        found = [state for state in stacks if state.port == port]
        if not found:
            running = f" (running: {where})" if stacks else ""
            raise SystemExit(f"newsdesk: no running local stack on port {port}{running}")
        return found[0]
    if not stacks:
        raise SystemExit(
            f"newsdesk: no running local stack: start one with `make dev` (each running stack says where it is"
            f" in {state_dir()}), or name its address with --local-url"
        )
    if len(stacks) > 1:
        raise SystemExit(f"newsdesk: {len(stacks)} local stacks are running ({where}): say which with --port")
    return stacks[0]


def _local_url(args: argparse.Namespace) -> str:
    return _local_stack(args)[0]


def _local_resources(api_url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"{api_url}/_local/resources", timeout=5) as reply:  # noqa: S310
            resources: dict[str, Any] = json.load(reply)
    except OSError as exc:
        raise SystemExit(f"newsdesk: no local stack answers at {api_url} ({exc}); start it with `make dev`") from exc
    return resources


def _local_table(api_url: str, logical_id: str) -> str:
    """Ask the local runner where its tables live, and point boto3 at its embedded AWS endpoint."""
    resources = _local_resources(api_url)
    os.environ["AWS_ENDPOINT_URL"] = resources["aws_endpoint"]
    os.environ.setdefault("AWS_DEFAULT_REGION", resources.get("region", "us-east-1"))
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(key, "testing")
    return next(r["physical_name"] for r in resources["resources"] if r["logical_id"] == logical_id)


def _use_aws_options(args: argparse.Namespace) -> None:
    # boto3 reads these when the first client is made, which is after this.
    if args.profile:
        os.environ["AWS_PROFILE"] = args.profile
    if args.region:
        os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"] = args.region


def _table(args: argparse.Namespace, logical_id: str, explicit: str | None, option: str) -> str:
    """A table of the chosen stack, by its logical id; `explicit` is the name given for --table (or None)."""
    if args.local:
        return _local_table(_local_url(args), logical_id)
    if args.stack:
        from newsdesk.dal.stacks import stack_output

        return stack_output(args.stack, f"{logical_id}Name")
    if explicit:
        return str(explicit)
    raise SystemExit(f"newsdesk: say which table: --stack NAME, {option} or --local")


def _optional_table(args: argparse.Namespace, logical_id: str, variable: str) -> str | None:
    """A table the --table form may leave out (its variable unset); the stack's own otherwise."""
    if args.local or args.stack:
        return _table(args, logical_id, None, "")
    return os.environ.get(variable) or None


def _editor_api(args: argparse.Namespace) -> Any:
    """The editor API of the chosen stack, with the token from NEWSDESK_TOKEN (locally: the stack's own)."""
    from newsdesk.progress import EditorApi

    token = os.environ.get("NEWSDESK_TOKEN")
    url = args.api_url or os.environ.get("NEWSDESK_API_URL")
    if args.local:
        local_url, state = _local_stack(args)
        url = url or local_url
        if not token and state is not None and state.api_url == url:
            token = state.token
    elif args.stack and not url:
        from newsdesk.dal.stacks import stack_output

        url = stack_output(args.stack, "ApiUrl")
    if not url:
        raise SystemExit("newsdesk: say which stack: --local, --stack NAME or --api-url URL")
    if not token:
        raise SystemExit(
            "newsdesk: set NEWSDESK_TOKEN to an editor token (`newsdesk token create --name <you>` mints one)"
        )
    return EditorApi(url, token)


def _where(parser: argparse.ArgumentParser, *, default: Any) -> None:
    """The options that say where the stack is. Every command takes them too, so they may come before or
    after it (`newsdesk token create --name x --stack prod`); SUPPRESS keeps a command's unset option from
    hiding the one given before the command."""
    where = parser.add_argument_group("where the stack is")
    where.add_argument("--stack", default=default, help="name of the deployed CloudFormation stack")
    where.add_argument("--local", action="store_true", default=default, help="the stack `make dev` runs")
    where.add_argument("--table", default=default, help="tokens table name (default: TOKENS_TABLE)")
    where.add_argument(
        "--local-url", default=default, help="address of the local stack (default: where the running one says)"
    )
    where.add_argument(
        "--port", type=int, default=default, help="the HTTP API port of the local stack, when several run"
    )
    where.add_argument("--api-url", default=default, help="the API's address for `delivery` and `import`")
    where.add_argument("--region", default=default, help="AWS region of a deployed stack")
    where.add_argument("--profile", default=default, help="AWS profile (~/.aws/config) for a deployed stack")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsdesk", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _where(parser, default=None)
    after = argparse.ArgumentParser(add_help=False)
    _where(after, default=argparse.SUPPRESS)

    commands = parser.add_subparsers(dest="area", required=True)
    token = commands.add_parser("token", help="editor API tokens").add_subparsers(dest="action", required=True)
    create = token.add_parser("create", parents=[after], help="mint a token; it is shown once")
    create.add_argument("--name", help="who or what the token is for (default with --person: their name)")
    create.add_argument("--person", help="the id of the person it belongs to (`newsdesk person list`)")
    create.add_argument("--role", choices=[role.value for role in Role], help="at most this role")
    token.add_parser("list", parents=[after], help="list tokens (ids and names, never the secrets)")
    revoke = token.add_parser("revoke", parents=[after], help="revoke a token by id")
    revoke.add_argument("token_id")

    people = commands.add_parser("person", help="the newsroom's people").add_subparsers(dest="action", required=True)
    person = people.add_parser("create", parents=[after], help="add a person with a role")
    person.add_argument("--name", required=True)
    person.add_argument("--email", required=True)
    person.add_argument("--role", required=True, choices=[role.value for role in Role])
    people.add_parser("list", parents=[after], help="list people (ids, roles, names)")

    articles = commands.add_parser("articles", help="published articles").add_subparsers(dest="action", required=True)
    restore = articles.add_parser(
        "restore-feeds",
        parents=[after],
        help="give every published article the feed entries it should have (safe to repeat)",
    )
    restore.add_argument("--articles-table", default=os.environ.get("ARTICLES_TABLE"), help="articles table name")

    secret = argparse.ArgumentParser(add_help=False)
    secret.add_argument("--secret", default=argparse.SUPPRESS, help="the signing secret's ARN or name (no stack)")
    secret.add_argument("--webhooks-table", default=argparse.SUPPRESS, help="the webhooks table's name (no stack)")
    keys = commands.add_parser("keys", help="the keys that sign links and seal webhook secrets").add_subparsers(
        dest="action", required=True
    )
    keys.add_parser("list", parents=[after, secret], help="the keys: ids, which is current, since when (never values)")
    keys.add_parser("rotate", parents=[after, secret], help="a new current key; what the older keys made keeps working")
    retire = keys.add_parser(
        "retire",
        parents=[after, secret],
        help="remove an old key: links it signed stop working; webhook secrets it sealed are sealed again first",
    )
    retire.add_argument("kid", help="the key's id (`keys list`)")
    retire.add_argument(
        "--force",
        action="store_true",
        help="a leaked key: retire it without waiting the 30 days unsubscribe links must keep working",
    )

    delivery = commands.add_parser("delivery", help="newsletters").add_subparsers(dest="action", required=True)
    watch = delivery.add_parser(
        "watch", parents=[after], help="a newsletter's progress, live, until it is done; then the summary"
    )
    watch.add_argument("article_id")
    watch.add_argument("--interval", type=float, default=1.0, help="seconds between looks (default: 1)")

    imports = commands.add_parser("import", help="subscriber imports").add_subparsers(dest="action", required=True)
    status = imports.add_parser(
        "status", parents=[after], help="a CSV import's progress, live, until it ends; then the summary"
    )
    status.add_argument("key", nargs="?", help="the file's key (default: the newest subscriber upload)")
    status.add_argument("--interval", type=float, default=1.0, help="seconds between looks (default: 1)")
    return parser


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.area == "token" and args.action == "create" and not (args.name or args.person):
        parser.error("token create needs --name or --person")
    chosen = [option for option in ("local", "stack", "table") if getattr(args, option)]
    if len(chosen) > 1:
        parser.error(f"choose one of --local, --stack and --table (got {', '.join(chosen)})")
    args.table = args.table or os.environ.get("TOKENS_TABLE")
    return args


def _restore_feeds(table: str) -> None:
    from newsdesk.dal.articles import ArticleRepository
    from newsdesk.dal.dynamodb import dynamodb_client
    from newsdesk.services.articles import ArticleService

    # Only feed entries are written: the publications table is never touched by this command.
    service = ArticleService(ArticleRepository(dynamodb_client(), table))
    print(f"restored the feed entries of {service.restore_feeds()} published articles")


def _key_places(args: argparse.Namespace) -> tuple[str, str | None]:
    """The chosen stack's signing secret, and its webhooks table (whose secrets a retirement seals again)."""
    if args.local:
        api_url = _local_url(args)
        return _local_table(api_url, "SigningSecret"), _local_table(api_url, "WebhooksTable")
    if args.stack:
        from newsdesk.dal.stacks import stack_resource

        return stack_resource(args.stack, "SigningSecret"), stack_resource(args.stack, "WebhooksTable")
    secret = getattr(args, "secret", None) or os.environ.get("SIGNING_SECRET_ARN")
    if not secret:
        raise SystemExit("newsdesk: say which stack: --stack NAME, --local or --secret ARN")
    return secret, getattr(args, "webhooks_table", None) or os.environ.get("WEBHOOKS_TABLE")


def _keys(args: argparse.Namespace) -> None:
    from newsdesk.dal.parameters import CACHE_SECONDS
    from newsdesk.dal.secrets import SigningSecretStore, secrets_manager_client
    from newsdesk.services.keys import KeyRotation

    secret_id, webhooks_table = _key_places(args)

    def reseal(keyring: Keyring) -> tuple[int, list[str]]:
        from newsdesk.dal.dynamodb import dynamodb_client
        from newsdesk.dal.webhooks import WebhookRepository
        from newsdesk.services.keys import SigningKeys
        from newsdesk.services.webhooks import WebhookSecrets, seal_every_secret_with_current_key

        if not webhooks_table:
            raise SystemExit("newsdesk: retiring a key seals webhook secrets again first: give --webhooks-table")
        repository = WebhookRepository(dynamodb_client(), webhooks_table)
        return seal_every_secret_with_current_key(repository, WebhookSecrets(SigningKeys(keyring)))

    rotation = KeyRotation(SigningSecretStore(secrets_manager_client(), secret_id), reseal=reseal)
    if args.action == "list":
        keyring = rotation.keyring()
        for kid in sorted(keyring.keys, key=int):
            key = keyring.keys[kid]
            made = f"made {key.created_at:%Y-%m-%d %H:%M}" if key.created_at else "made with the stack"
            superseded = f"{key.superseded_at:%Y-%m-%d %H:%M}" if key.superseded_at else "at an unknown time"
            state = "current" if kid == keyring.current else f"superseded {superseded}"
            print(f"{kid:>4}  {made:<24}  {state}")
        print("the identifiers key (recipient keys, stored hashes) never rotates")
    elif args.action == "rotate":
        keyring = rotation.rotate()
        kept = ", ".join(sorted(keyring.keys, key=int))
        print(
            f"key {keyring.current} is current (keys kept: {kept}); every function signs with it within"
            f" {CACHE_SECONDS // 60} minutes, and what the older keys made keeps working while they are kept"
        )
    else:
        retired = rotation.retire(args.kid, force=args.force)
        print(f"retired key {retired.kid}; {retired.resealed} webhook secret(s) sealed again under the current key")
        for webhook_id in retired.unreadable:
            print(f"webhook {webhook_id}: no key opens its secret any more; delete it and create it again")


def _cli_actor() -> Actor:
    import getpass

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment
        user = "unknown"
    return Actor(id=f"cli:{user}", role=Role.ADMIN)


def _services(args: argparse.Namespace) -> tuple[TokenService, PeopleService]:
    from newsdesk.dal.audit import AuditRepository
    from newsdesk.dal.dynamodb import dynamodb_client
    from newsdesk.dal.people import PeopleRepository
    from newsdesk.dal.tokens import TokenRepository
    from newsdesk.services.audit import AuditLog
    from newsdesk.services.people import PeopleService
    from newsdesk.services.tokens import TokenService

    # The tables first: for --local, finding them also points boto3 at the local endpoint.
    if args.area == "person":
        tokens_table = _optional_table(args, "TokensTable", "TOKENS_TABLE") or ""
    else:
        tokens_table = _table(args, "TokensTable", args.table, "--table NAME (or TOKENS_TABLE)")
    audit_table = _optional_table(args, "AuditTable", "AUDIT_TABLE")
    people_table = _optional_table(args, "PeopleTable", "PEOPLE_TABLE")
    if people_table is None and (args.area == "person" or getattr(args, "person", None)):
        raise SystemExit("newsdesk: say which people table: --stack NAME, --local, or PEOPLE_TABLE")
    if audit_table is None:
        print("newsdesk: AUDIT_TABLE is not set: this change is not recorded in the audit trail", file=sys.stderr)
    client = dynamodb_client()
    audit = AuditLog(AuditRepository(client, audit_table) if audit_table else None)
    people = PeopleRepository(client, people_table or "", audit_table=audit_table or "")
    tokens = TokenService(
        TokenRepository(client, tokens_table, audit_table=audit_table or ""), people=people, audit=audit
    )
    return tokens, PeopleService(people, tokens=tokens, audit=audit)


def _tokens(args: argparse.Namespace) -> None:
    tokens, people = _services(args)
    actor = _cli_actor()
    if args.action == "create":
        role = Role(args.role) if args.role else None
        if args.person:
            issued = people.issue_token(args.person, CreateTokenRequest(name=args.name, role=role), actor=actor)
        else:
            issued = tokens.create(args.name, role=role, actor=actor)
        print(f"token {issued.token_id} ({issued.name}, {issued.role.value}) - store it now, it is not shown again:")
        print(issued.token)
    elif args.action == "list":
        for token in tokens.every_token():
            state = "revoked" if token.revoked else "active"
            owner = f"person {token.person_id}" if token.person_id else "no person"
            limit = f", at most {token.role.value}" if token.role else ""
            print(f"{token.token_id}  {state:8}  {token.created_at:%Y-%m-%d %H:%M}  {token.name} ({owner}{limit})")
    else:
        revoked = tokens.revoke(args.token_id, actor=actor)
        print(f"revoked {revoked.token_id} ({revoked.name})")


def _people(args: argparse.Namespace) -> None:
    _, people = _services(args)
    if args.action == "create":
        request = CreatePersonRequest(name=args.name, email=args.email, role=Role(args.role))
        person = people.create(request, actor=_cli_actor())
        print(f"person {person.id} ({person.name}, {person.role.value})")
        return
    cursor: str | None = None
    while True:
        page, cursor = people.page(limit=100, cursor=cursor)
        for found in page:
            state = "disabled" if found.disabled else found.role.value
            print(f"{found.id}  {state:11}  {found.name} <{found.email}>")
        if cursor is None:
            return


def _watch(args: argparse.Namespace) -> int:
    from newsdesk.progress import ApiError, delivery_snapshot, import_snapshot, watch

    api = _editor_api(args)
    terminal = sys.stdout.isatty()
    try:
        if args.area == "delivery":
            path = f"/admin/articles/{urllib.parse.quote(args.article_id, safe='')}/delivery"
            snapshot = watch(
                f"newsletter of {args.article_id}",
                lambda: delivery_snapshot(api.get(path)),
                out=sys.stdout,
                terminal=terminal,
                interval=args.interval,
            )
            return 0 if snapshot.finished else 1
        upload = _first_record(api, args.key, interval=args.interval)
        snapshot = watch(
            f"import of {upload['key']}",
            lambda: import_snapshot(_subscriber_upload(api, args.key, upload_id=upload["id"])),
            out=sys.stdout,
            terminal=terminal,
            interval=args.interval,
        )
        return 1 if snapshot.state == "rejected" else 0
    except ApiError as exc:
        print(f"newsdesk: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


UPLOAD_WAIT_SECONDS = 60.0
"""How long `import status KEY` waits for the upload's record: S3's notification and the function's cold start
come a moment after `aws s3 cp` returns."""


def _first_record(api: Any, key: str | None, *, interval: float) -> dict[str, Any]:
    import time

    from newsdesk.progress import ApiError

    deadline = time.monotonic() + (UPLOAD_WAIT_SECONDS if key else 0)
    waiting = False
    while True:
        try:
            return _subscriber_upload(api, key)
        except ApiError as exc:
            if exc.status != 404 or (time.monotonic() >= deadline and not waiting):
                raise
            if time.monotonic() >= deadline:
                hint = "is the key right, and was the file uploaded to this stack's bucket?"
                raise ApiError(404, f"{exc.message}: none within {UPLOAD_WAIT_SECONDS:.0f}s; {hint}") from exc
            if not waiting:
                why = "S3's notification and the import start a moment after the upload"
                wait = f"{UPLOAD_WAIT_SECONDS:.0f}s"
                print(f"newsdesk: waiting up to {wait} for the upload of {key} ({why})", file=sys.stderr)
                waiting = True
        time.sleep(interval)


def _subscriber_upload(api: Any, key: str | None, *, upload_id: str | None = None) -> dict[str, Any]:
    """The newest subscriber upload (of `key`, when given), among the newest 100 uploads."""
    from newsdesk.progress import ApiError

    for item in api.get("/admin/uploads", limit="100")["items"]:
        if upload_id is not None:
            if item["id"] == upload_id:
                return dict(item)
        elif item["kind"] == "subscribers" and key in (None, item["key"]):
            return dict(item)
    wanted = f"of {key}" if key else "of a subscriber file"
    raise ApiError(404, f"no upload {wanted} among the 100 newest (GET /admin/uploads)")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    _use_aws_options(args)
    try:
        if args.area in ("delivery", "import"):
            return _watch(args)
        if args.area == "keys":
            _keys(args)
            return 0
        if args.area == "articles":
            _restore_feeds(
                _table(args, "ArticlesTable", args.articles_table, "--articles-table NAME (or ARTICLES_TABLE)")
            )
        elif args.area == "person":
            _people(args)
        else:
            _tokens(args)
    except ValidationError as exc:
        print(f"newsdesk: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}", file=sys.stderr)
        return 1
    except NewsdeskError as exc:
        print(f"newsdesk: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
