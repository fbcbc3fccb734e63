"""The `newsdesk` command: its own examples parse, options go before or after the command, and `--local`
finds the running stack through the state file `make dev` writes, whatever its PORT."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from newsdesk import cli
from newsdesk.local_state import LocalStackState, read_state, remove_state, write_state


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
        assert args.area in ("token", "person", "articles", "delivery", "import")
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
def state_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state.json"
    monkeypatch.setenv("NEWSDESK_LOCAL_STATE", str(path))
    for name in ("PORT", "NEWSDESK_LOCAL_URL", "NEWSDESK_TOKEN", "NEWSDESK_API_URL"):
        monkeypatch.delenv(name, raising=False)
    return path


def test_local_finds_the_running_stack_whatever_its_port(state_file: Path) -> None:
    write_state(LocalStackState("http://127.0.0.1:3999", "http://127.0.0.1:4999", "us-east-1", "dev", os.getpid()))

    assert cli._local_url(cli.parse(["--local", "token", "list"])) == "http://127.0.0.1:3999"
    api = cli._editor_api(cli.parse(["--local", "delivery", "watch", "a-1"]))
    assert (api.base_url, api._token) == ("http://127.0.0.1:3999", "dev")
    assert state_file.stat().st_mode & 0o777 == 0o600  # it holds the local editor token


def test_local_without_a_running_stack_uses_port(state_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A state file left by a stack that died (its process is gone) is not believed.
    write_state(LocalStackState("http://127.0.0.1:3999", "http://127.0.0.1:4999", "us-east-1", "dev", 2**22 + 7))
    assert read_state() is None
    assert cli._local_url(cli.parse(["--local", "token", "list"])) == "http://127.0.0.1:3000"

    monkeypatch.setenv("PORT", "3100")
    assert cli._local_url(cli.parse(["--local", "token", "list"])) == "http://127.0.0.1:3100"
    assert cli._local_url(cli.parse(["--local", "--local-url", "http://127.0.0.1:9/", "token", "list"])) == (
        "http://127.0.0.1:9"
    )


def test_a_stack_removes_only_its_own_state(state_file: Path) -> None:
    write_state(LocalStackState("http://127.0.0.1:3999", "http://127.0.0.1:4999", "us-east-1", "dev", os.getpid()))

    remove_state(os.getpid() + 1)  # an older stack stopping after a newer one started
    assert read_state() is not None
    remove_state(os.getpid())
    assert not state_file.exists()


def test_api_commands_need_a_token(state_file: Path) -> None:
    with pytest.raises(SystemExit, match="NEWSDESK_TOKEN"):
        cli._editor_api(cli.parse(["--api-url", "https://api.example.org", "delivery", "watch", "a-1"]))
