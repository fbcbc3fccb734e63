"""The whole local stack for end-to-end tests: `python -m local` in a subprocess, on free ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.stack_process import HttpReply, LocalStack, StackFailed, local_stack_process

__all__ = ["HttpReply", "LocalStack"]


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    log_path = tmp_path_factory.mktemp("local-stack") / "local.log"
    refused: list[dict[str, str]] = []
    try:
        # Webhooks may point at 127.0.0.1 only: no test (the fuzzer least of all) reaches beyond this machine.
        # Every test sends with the one dev token, the fuzzer test emails by the dozen: the hourly allowance
        # per token has its own integration test.
        parameters = "WebhookTargets=loopback TestEmailsPerTokenPerHour=100000"
        with local_stack_process(log_path, {"NEWSDESK_PARAMETERS": parameters}) as stack:
            yield stack
            refused = stack.denials()
    except StackFailed as failure:
        pytest.fail(str(failure))
    # Every function ran with only its role: a call AWS would refuse is a defect, whatever the test saw.
    assert refused == [], f"AWS would refuse these calls of the functions: {refused}"
