"""newsdesk.startup: the collector is off while a handler loads and until its first invocation returns."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from newsdesk import startup


@pytest.fixture
def collector_off() -> Iterator[None]:
    """As a handler module's load leaves this process (and puts it back as it was afterwards)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()


def echo(event: dict[str, str], context: object) -> dict[str, str]:
    return event


def refuse(event: dict[str, str], context: object) -> dict[str, str]:
    raise ValueError("the first invocation failed")


@pytest.mark.usefixtures("collector_off")
def test_the_collector_comes_back_when_the_first_invocation_returns() -> None:
    handler = startup.loaded(echo)
    assert gc.isenabled() is False
    assert gc.get_freeze_count() > 0  # what the load made: no collection traverses it again

    assert handler({"n": "1"}, None) == {"n": "1"}
    assert gc.isenabled() is True
    assert handler({"n": "2"}, None) == {"n": "2"}


@pytest.mark.usefixtures("collector_off")
def test_the_collector_comes_back_when_the_first_invocation_fails() -> None:
    handler = startup.loaded(refuse)

    with pytest.raises(ValueError, match="first invocation failed"):
        handler({}, None)
    assert gc.isenabled() is True
