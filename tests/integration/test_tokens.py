"""Editor tokens: the command-line tool mints and revokes them, the authorizer honours them."""

from __future__ import annotations

import pytest

from newsdesk.cli import main
from newsdesk.services.tokens import hash_token
from tests.integration.conftest import Stack
from tests.support.events import sample_event


def authorize(stack: Stack, authorization: str) -> bool:
    event = sample_event("authorizer", headers={"Authorization": authorization})
    answer = stack.invoke("AuthorizerFunction", event)
    return bool(answer["isAuthorized"])


def create_token(stack: Stack, capsys: pytest.CaptureFixture[str], name: str = "laptop") -> tuple[str, str]:
    assert main(["--table", stack.table("TokensTable"), "token", "create", "--name", name]) == 0
    lines = capsys.readouterr().out.splitlines()
    token_id = lines[0].split()[1]
    return token_id, lines[1]


def test_a_created_token_opens_admin_and_is_stored_only_as_a_hash(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    token_id, token = create_token(stack, capsys)

    assert authorize(stack, f"Bearer {token}")
    assert authorize(stack, f"bearer   {token} ")
    stored = stack.items("TokensTable")
    assert [item["token_hash"]["S"] for item in stored] == [hash_token(token)]
    assert token not in repr(stored)
    assert token_id == hash_token(token)[:8]


@pytest.mark.parametrize(
    "authorization", ["Bearer nope-not-a-token-at-all", "Basic dXNlcjpwYXNz", "Bearer", "", "Bearer " + "x" * 5000]
)
def test_wrong_tokens_are_refused(stack: Stack, capsys: pytest.CaptureFixture[str], authorization: str) -> None:
    create_token(stack, capsys)

    assert not authorize(stack, authorization)


def test_a_revoked_token_is_refused_at_once(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    token_id, token = create_token(stack, capsys)
    _, other = create_token(stack, capsys, "phone")

    assert main(["--table", stack.table("TokensTable"), "token", "revoke", token_id]) == 0
    assert main(["--table", stack.table("TokensTable"), "token", "list"]) == 0

    listing = capsys.readouterr().out
    assert f"{token_id}  revoked" in listing
    assert "phone" in listing
    assert not authorize(stack, f"Bearer {token}")
    assert authorize(stack, f"Bearer {other}")


def test_revoking_an_unknown_token_says_so(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--table", stack.table("TokensTable"), "token", "revoke", "deadbeef"]) == 1
    assert "no token with id 'deadbeef'" in capsys.readouterr().err
