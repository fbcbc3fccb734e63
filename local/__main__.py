"""`python -m local`: the embedded AWS, the template's resources, event sources and the HTTP API."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import sys
import threading
from types import FrameType
from typing import Any
from urllib.parse import parse_qs

from local.apigateway.server import ApiServer, serve_in_thread
from local.aws import moto_fixes
from local.aws.embedded import (
    aws_environment,
    client,
    default_region,
    start_moto,
)
from local.aws.persistence import StateFolder, StateFolderError, state_folder
from local.iam.policies import AccessPolicy
from local.lambda_runtime.events import ApiContext, HttpRequest
from local.lambda_runtime.functions import WorkerFunctions
from local.lambda_runtime.sources import EventSources
from local.outbox.routes import add_outbox_routes
from local.stack import build_stack, local_resolver, project_template
from local.template.model import FUNCTION
from local.template.resolver import parameter_overrides
from newsdesk.dal.tokens import TokenRepository
from newsdesk.local_state import LocalStackState, remove_state, write_state
from newsdesk.services.tokens import TokenService

log = logging.getLogger("local")

# Lambda has no X-Ray daemon here: traces would only produce connection errors. `GET /` names the runner's
# own pages (the outbox) when LOCAL_PAGES says where they are.
LOCAL_ONLY_ENVIRONMENT = {"POWERTOOLS_TRACE_DISABLED": "true", "LOCAL_PAGES": "/_local/"}


def _banner(api_url: str, endpoint: str, region: str, token: str, data: str, sandbox: bool) -> str:
    aws = f"AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing aws --region {region} --endpoint-url {endpoint}"
    return "\n".join(
        [
            "",
            "Newsdesk is running locally.",
            f"  HTTP API      {api_url}",
            f"  AWS endpoint  {endpoint}  (region {region}; credentials testing/testing may do anything,",
            "                each function has its own, limited to its IAM role: see Resources)",
            f"                {aws} dynamodb list-tables",
            f"                {aws} s3 ls",
            f"  Editor token  {token}",
            f'                curl -H "Authorization: Bearer {token}" {api_url}/admin/articles',
            f"  Resources     {api_url}/_local/resources",
            f"  Sent emails   {api_url}/_local/" + ("  (SES sandbox: to verified addresses only)" if sandbox else ""),
            f"  Data          {data}",
            "Press Ctrl-C to stop.",
            "",
        ]
    )


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # moto's request log and botocore's credential notes would drown the functions' own logs.
    for noisy in ("werkzeug", "botocore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    port = int(os.environ.get("PORT", "3000"))
    aws_port = int(os.environ.get("AWS_PORT", "4566"))
    chosen_token = os.environ.get("NEWSDESK_DEV_TOKEN")
    if chosen_token and not 16 <= len(chosen_token) <= 512:  # the token service's bounds, before anything starts
        log.error("NEWSDESK_DEV_TOKEN must be 16 to 512 characters long")
        return 2
    region = default_region()
    sandbox = os.environ.get("NEWSDESK_SES_SANDBOX", "false").lower()
    if sandbox not in ("true", "false"):
        log.error("NEWSDESK_SES_SANDBOX must be true or false")
        return 2

    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    try:
        overrides = parameter_overrides(os.environ.get("NEWSDESK_PARAMETERS", ""), project_template())
        resolver = local_resolver(api_url=f"http://127.0.0.1:{port}", parameters=overrides, region=region)
    except ValueError as error:
        log.error("NEWSDESK_PARAMETERS: %s", error)
        return 2
    template = resolver.template
    policy = AccessPolicy(resolver.account_id)
    try:
        moto, endpoint = start_moto(aws_port, policy=policy)
    except RuntimeError as error:
        log.error("%s", error)
        return 1
    server: ApiServer | None = None
    serving: threading.Thread | None = None
    sources: EventSources | None = None
    functions: WorkerFunctions | None = None
    state = state_folder(resolver, endpoint)
    entry: LocalStackState | None = None
    try:
        os.environ.update(aws_environment(endpoint, region))
        built = build_stack(resolver, endpoint=endpoint, policy=policy, ses_sandbox=sandbox == "true")
        resources, ses_events = built.resources, built.ses_events
        # Before any function runs or any event source takes its position: see local.aws.persistence.
        data = _NOT_KEPT if state is None else f"kept in {state.folder} ({state.restore().describe()})"
        tokens = TokenService(
            TokenRepository(client("dynamodb", endpoint, region), resolver.physical_name("TokensTable"))
        )
        token = _dev_token(tokens, chosen_token, state.dev_token if state else None)
        if state is not None:
            state.dev_token = token
            state.keep_saving()

        functions = WorkerFunctions(
            template,
            resolver,
            policy.credentials,
            extra_environment={"AWS_ENDPOINT_URL": endpoint, **LOCAL_ONLY_ENVIRONMENT},
        )
        server = ApiServer(
            ("127.0.0.1", port), template, functions, ApiContext(region=region), invoke_policies=built.invoke_policies
        )
        api_url = server.url

        def list_resources(_request: HttpRequest) -> tuple[int, Any]:
            described = []
            for resource in resources:
                entry: dict[str, Any] = resource.as_dict()
                if resource.type == FUNCTION:
                    entry["credentials"] = policy.credentials[resource.logical_id].as_dict()
                described.append(entry)
            return 200, {"aws_endpoint": endpoint, "region": region, "api_url": api_url, "resources": described}

        def list_denials(_request: HttpRequest) -> tuple[int, Any]:
            return 200, {"denials": [denial.as_dict() for denial in policy.denials()]}

        def usage(request: HttpRequest) -> tuple[int, Any]:
            reset = request.method == "DELETE"
            assert functions is not None
            return 200, {
                **moto.usage.snapshot(reset=reset),
                **ses_events.usage(reset=reset),
                "functions": functions.usage(reset=reset),
                "dynamodb_writes": moto_fixes.partition_writes.summary(reset=reset),
            }

        server.add_local_route("GET", "/_local/iam/denials", list_denials)
        server.add_local_route("GET", "/_local/usage", usage)
        server.add_local_route("DELETE", "/_local/usage", usage)
        server.add_local_route("GET", "/_local/resources", list_resources)
        add_outbox_routes(server, region)
        sources = EventSources(
            template, resolver, functions.invoke, endpoint, service_credentials=policy.service_credentials
        )

        def run_schedules(request: HttpRequest) -> tuple[int, Any]:
            query = parse_qs(request.query)
            function = query.get("function", [None])[0]
            name = query.get("schedule", [None])[0]
            if function is not None and function not in template.functions:
                return 404, {"message": f"no function {function!r} in the template"}
            if name is not None and name not in sources.schedule_names():
                known = ", ".join(sorted(sources.schedule_names()))
                return 404, {"message": f"no enabled schedule {name!r} in the template (there are: {known})"}
            return 200, {"fired": sources.run_schedules(function, name)}

        server.add_local_route("POST", "/_local/schedules/run", run_schedules)
        sources.start()
        serving = serve_in_thread(server)
        # `newsdesk --local` reads it to find this stack (whatever PORT is, among others) and its editor token.
        entry = LocalStackState(api_url, endpoint, region, token, os.getpid())
        write_state(entry)
        print(_banner(api_url, endpoint, region, token, data, sandbox == "true"), flush=True)
        while not stop.wait(0.5):
            pass
        return 0
    except (OSError, StateFolderError) as error:
        log.error("cannot start the local stack: %s", error)
        return 1
    finally:
        if entry is not None:
            remove_state(entry.port, entry.pid)
        if server is not None:
            if serving is not None:
                server.shutdown()
            server.server_close()
        if sources is not None:
            sources.stop()
        if functions is not None:
            functions.stop()
        if state is not None:
            _save(state)
        moto.stop()
        log.info("stopped")


_NOT_KEPT = "in memory only: stopping the stack loses it (NEWSDESK_STATE_DIR=<folder> keeps it across restarts)"


def _dev_token(tokens: TokenService, chosen: str | None, saved: str | None) -> str:
    """The editor token the stack prints: NEWSDESK_DEV_TOKEN, else the one it printed before its data was
    saved (while it is not revoked), else a new one; registered unless the restored tokens hold it."""
    token = chosen or (saved if saved and tokens.is_valid(saved) else secrets.token_urlsafe(32))
    if not tokens.is_valid(token):
        tokens.create("local-dev", token=token)
    return token


def _save(state: StateFolder) -> None:
    state.stop()
    try:
        if state.save():
            log.info("saved the stack's data to %s", state.path)
    except Exception:  # the embedded AWS is still up: a failure here is a fault to show, not to hide
        log.exception("could not save the stack's data to %s", state.path)
    finally:
        state.close()


if __name__ == "__main__":
    sys.exit(main())
