"""Settings every test process needs before any product module is imported (as Lambda has them at start)."""

from __future__ import annotations

import os

import pytest

# The same Powertools settings as the template's Globals; tracing is off because there is no X-Ray here.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "newsdesk")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Newsdesk")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # Said last, where it is read: a run that skipped the browser tests did not check what a browser shows.
    skipped = terminalreporter.stats.get("skipped", [])
    if any("NEWSDESK_SKIP_BROWSER" in str(getattr(report, "longrepr", "")) for report in skipped):
        terminalreporter.write_line(
            "NEWSDESK_SKIP_BROWSER is set: the browser tests (tests/e2e/test_browser.py, test_outbox_browser.py)"
            " were skipped; unset it to run them (CI does)",
            yellow=True,
        )
