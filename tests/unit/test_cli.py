"""The `newsdesk` command: its own examples parse, options go before or after the command, and `--local`
finds the running stack through the entry each `make dev` writes, whatever its PORT, and asks which when several run."""

from __future__ import annotations

import os
import shlex
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from newsdesk import cli
from newsdesk.local_state import LocalStackState, remove_state, running_stacks, write_state
from newsdesk.progress import ApiError


def _examples() -> list[list[str]]:
    lines = [line.strip() for line in (cli.__doc__ or "").splitlines() if line.strip().startswith("newsdesk ")]
    commands = []
    for line in lines:
        command = line.split("#", 1)[0].replace("<id>", "t-1").replace("<article-id>", "a-1")
        commands.append(shlex.split(command)[1:])
    return commands


def test_the_help_shows_examples_and_every_one_parses() -> None:
    examples = _examples()

    assert len(examples) >= 7
    for argv in examples:
        args = cli.parse(argv)
        assert args.area in ("token", "person", "articles", "delivery", "import", "keys")
        assert bool(args.local) != bool(args.stack), argv


def test_where_options_may_follow_the_command() -> None:
    before = cli.parse(["--stack", "prod", "--region", "eu-west-1", "token", "list"])
    after = cli.parse(["token", "create", "--name", "laptop", "--stack", "prod", "--profile", "ops"])

    assert (before.stack, before.region) == ("prod", "eu-west-1")
    assert (after.stack, after.profile, after.name) == ("prod", "ops", "laptop")


def test_two_places_at_once_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.parse(["--local", "token", "list", "--stack", "prod"])
    assert "choose one of --local, --stack and --table" in capsys.readouterr().err


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state"
    monkeypatch.setenv("NEWSDESK_LOCAL_STATE", str(path))
    for name in ("PORT", "NEWSDESK_LOCAL_URL", "NEWSDESK_TOKEN", "NEWSDESK_API_URL"):
        monkeypatch.delenv(name, raising=False)
    return path


@pytest.fixture
def listening() -> Iterator[Callable[[], int]]:
    """Ports something listens on, as a running stack's HTTP API does."""
    sockets: list[socket.socket] = []

    def listen() -> int:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        sockets.append(sock)
        return int(sock.getsockname()[1])

    yield listen
    for sock in sockets:
        sock.close()


def stack_on(port: int, token: str = "dev", pid: int | None = None) -> LocalStackState:
    state = LocalStackState(f"http://127.0.0.1:{port}", "http://127.0.0.1:4999", "us-east-1", token, pid or os.getpid())
    write_state(state)
    return state


def test_local_finds_the_running_stack_whatever_its_port_and_says_so(
    state_dir: Path, listening: Callable[[], int], capsys: pytest.CaptureFixture[str]
) -> None:
    port = listening()
    stack_on(port)

    assert cli._local_url(cli.parse(["--local", "token", "list"])) == f"http://127.0.0.1:{port}"
    api = cli._editor_api(cli.parse(["--local", "delivery", "watch", "a-1"]))
    assert (api.base_url, api._token) == (f"http://127.0.0.1:{port}", "dev")
    assert capsys.readouterr().err == f"newsdesk: using the local stack at http://127.0.0.1:{port}\n" * 2
    assert (state_dir / f"{port}.json").stat().st_mode & 0o777 == 0o600  # it holds the local editor token


def test_with_two_stacks_running_the_port_says_which(state_dir: Path, listening: Callable[[], int]) -> None:
    # Given two running stacks, each with its own entry (a second one no longer replaces the first)
    first, second = listening(), listening()
    stack_on(first, token="first")
    stack_on(second, token="second")

    # When the command does not say which, it asks; --port picks one, with that stack's token
    with pytest.raises(
        SystemExit, match=rf"2 local stacks are running \(.*:{min(first, second)}, .*\): say which with --port"
    ):
        cli._local_url(cli.parse(["--local", "token", "list"]))
    api = cli._editor_api(cli.parse(["--local", "delivery", "watch", "a-1", "--port", str(second)]))
    assert (api.base_url, api._token) == (f"http://127.0.0.1:{second}", "second")
    with pytest.raises(SystemExit, match=r"no running local stack on port 9 \(running: "):
        cli._local_url(cli.parse(["--local", "--port", "9", "token", "list"]))


def test_without_a_running_stack_local_says_so(state_dir: Path, listening: Callable[[], int]) -> None:
    # Given entries of a stack whose process is gone, of one whose port does not answer, and a live one
    stack_on(listening(), pid=2**22 + 7)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        stack_on(int(probe.getsockname()[1]))
    live = stack_on(listening())

    # Then only the live one counts, and the dead process's entry is cleaned away
    assert running_stacks() == [live]
    assert len(list(state_dir.glob("*.json"))) == 2

    # And with none running, the command says so rather than trying an address
    remove_state(live.port, live.pid)
    with pytest.raises(SystemExit, match="no running local stack: start one with `make dev`"):
        cli._local_url(cli.parse(["--local", "token", "list"]))
    assert cli._local_url(cli.parse(["--local", "--local-url", "http://127.0.0.1:9/", "token", "list"])) == (
        "http://127.0.0.1:9"
    )


def test_a_stack_removes_only_its_own_entry(state_dir: Path, listening: Callable[[], int]) -> None:
    port = listening()
    stack_on(port)

    remove_state(port, os.getpid() + 1)  # an older stack on the port stopping after a newer one started
    assert [state.port for state in running_stacks()] == [port]
    remove_state(port, os.getpid())
    assert running_stacks() == []
    assert not (state_dir / f"{port}.json").exists()


def test_api_commands_need_a_token(state_dir: Path) -> None:
    with pytest.raises(SystemExit, match="NEWSDESK_TOKEN"):
        cli._editor_api(cli.parse(["--api-url", "https://api.example.org", "delivery", "watch", "a-1"]))


class _Uploads:
    """The editor API's upload list, where a file's record appears after a few looks."""

    def __init__(self, key: str, looks_before: int) -> None:
        self.record = {"id": "u-1", "key": key, "kind": "subscribers"}
        self.looks_before = looks_before

    def get(self, path: str, **_query: str) -> dict[str, object]:
        assert path == "/admin/uploads"
        self.looks_before -= 1
        return {"items": [self.record] if self.looks_before < 0 else []}


def test_import_status_says_what_it_waits_for_and_why_it_gave_up(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "UPLOAD_WAIT_SECONDS", 0.5)

    found = cli._first_record(_Uploads("subscribers/a.csv", looks_before=2), "subscribers/a.csv", interval=0.01)

    assert found["key"] == "subscribers/a.csv"
    assert capsys.readouterr().err.startswith("newsdesk: waiting up to 0s for the upload of subscribers/a.csv (")
    with pytest.raises(ApiError, match=r"no upload of subscribers/typo.csv .*: none within 0s; is the key right"):
        cli._first_record(_Uploads("subscribers/b.csv", looks_before=0), "subscribers/typo.csv", interval=0.05)
