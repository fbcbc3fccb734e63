"""The editor's command line against the running local stack, found as a person finds it: through the entry
the stack writes (no address, no token given), whatever port it runs on, and asking which when several run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from urllib.parse import urlsplit

import boto3
import pytest

from local.aws.embedded import DUMMY_CREDENTIALS
from newsdesk.local_state import LocalStackState, remove_state, write_state
from tests.e2e.conftest import LocalStack

pytestmark = pytest.mark.e2e


def newsdesk(local_stack: LocalStack, *arguments: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    # Nothing of this process's AWS settings, no PORT, no token: the stack's state entry is all it has.
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "NEWSDESK_")) and key != "PORT"
    }
    environment["NEWSDESK_LOCAL_STATE"] = str(local_stack.state_path)
    command = [sys.executable, "-m", "newsdesk.cli", *arguments]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=timeout, check=False)


def test_local_finds_the_stack_on_its_port_and_mints_a_working_token(local_stack: LocalStack) -> None:
    assert not local_stack.api_url.endswith(":3000")

    minted = newsdesk(local_stack, "--local", "token", "create", "--name", "cli-e2e")

    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.splitlines()[1]
    assert local_stack.request("GET", "/admin/articles", headers={"Authorization": f"Bearer {token}"}).status == 200


def test_import_status_and_delivery_watch_end_with_their_summaries(local_stack: LocalStack) -> None:
    # Given confirmed subscribers imported from a CSV file, watched with `newsdesk import status`
    s3 = boto3.client(
        "s3",
        endpoint_url=local_stack.aws_endpoint,
        region_name=local_stack.region,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    run = uuid.uuid4().hex[:8]
    rows = "".join(f"cli-{run}-{n}@example.org\n" for n in range(5))
    key = f"subscribers/confirmed/cli-{run}.csv"
    s3.put_object(Bucket=local_stack.physical_name("UploadsBucket"), Key=key, Body=f"email\n{rows}".encode())

    imported = newsdesk(local_stack, "--local", "import", "status", key, "--interval", "0.2")

    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert f"import of {key}: imported - 5 imported, 0 skipped, 0 invalid of 5" in imported.stdout

    # When an article is published and its newsletter watched with `newsdesk delivery watch`
    article = local_stack.request(
        "POST", "/admin/articles", json_body={"title": f"Watched {run}", "author": "Ada", "body": "Hi."}, editor=True
    ).json()
    assert local_stack.request("POST", f"/admin/articles/{article['id']}/publish", editor=True).status == 200

    watched = newsdesk(local_stack, "--local", "delivery", "watch", article["id"], "--interval", "0.2")

    # Then it ends once every recipient is settled, with the summary (plain lines: the output is a pipe)
    assert watched.returncode == 0, watched.stdout + watched.stderr
    summary = next(line for line in watched.stdout.splitlines() if ": done - " in line)
    final = local_stack.request("GET", f"/admin/articles/{article['id']}/delivery", editor=True).json()
    assert final["total"] >= 5
    assert f"{final['sent']} sent, {final['failed']} failed, {final['suppressed']} suppressed of {final['total']}" in (
        summary
    )
    assert "━" not in watched.stdout


def test_a_command_for_an_unknown_article_says_so(local_stack: LocalStack) -> None:
    missing = newsdesk(local_stack, "--local", "delivery", "watch", "no-such-article")

    assert missing.returncode == 1
    assert "newsdesk:" in missing.stderr


def test_with_another_stack_running_the_cli_asks_which_and_says_which_it_uses(
    local_stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a second stack's entry beside this one's, for a port something listens on
    monkeypatch.setenv("NEWSDESK_LOCAL_STATE", str(local_stack.state_path))
    port = urlsplit(local_stack.api_url).port
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        other_url = f"http://127.0.0.1:{other.getsockname()[1]}"
        second = LocalStackState(other_url, "http://127.0.0.1:9", "us-east-1", "other-token", os.getpid())
        write_state(second)
        try:
            # When the command does not say which stack, and then does
            asked = newsdesk(local_stack, "--local", "token", "list")
            chosen = newsdesk(local_stack, "--local", "token", "list", "--port", str(port))
        finally:
            remove_state(second.port, second.pid)

    # Then it asks, naming both, and with --port it uses this stack and says so (on stderr: stdout is the answer)
    assert asked.returncode == 1
    both = ", ".join(sorted([local_stack.api_url, other_url], key=lambda url: int(url.rsplit(":", 1)[1])))
    assert f"2 local stacks are running ({both}): say which with --port" in asked.stderr
    assert (chosen.returncode, chosen.stderr) == (0, f"newsdesk: using the local stack at {local_stack.api_url}\n")
    assert "local-dev" in chosen.stdout
    # Alone again, it is the one
    alone = newsdesk(local_stack, "--local", "token", "list")
    assert (alone.returncode, alone.stderr) == (0, f"newsdesk: using the local stack at {local_stack.api_url}\n")
