"""What every test process needs before any product module is imported, as Lambda has it at start: the
template's layer ahead of the venv on the import path (local/layer.py), and the Powertools settings."""

from __future__ import annotations

import os

import pytest

from local import layer
from local.template import load_template

# Before any test module imports the product: its packages then come from the layer built from
# shared/requirements.txt, not from the venv that runs pytest and moto (a package the venv has and the
# layer lacks fails here as it fails on Lambda). Built once per change of the requirements; under
# pytest-xdist the controller builds it before the workers start. The template is read with local.template
# alone: local.stack would import boto3 (through moto) from the venv before the layer is on the path.
PRODUCT_PATH = layer.use_in_this_process(load_template(layer.ROOT / "template.yaml").layer_dirs)

# The same Powertools settings as the template's Globals; tracing is off because there is no X-Ray here.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "newsdesk")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Newsdesk")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")


def pytest_report_header() -> str:
    return "the product imports from: " + ", ".join(str(folder) for folder in PRODUCT_PATH.folders)


@pytest.fixture(scope="session")
def product_path() -> layer.ProductPath:
    return PRODUCT_PATH


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # Said last, where it is read: a run that skipped the browser tests did not check what a browser shows.
    skipped = terminalreporter.stats.get("skipped", [])
    if any("NEWSDESK_SKIP_BROWSER" in str(getattr(report, "longrepr", "")) for report in skipped):
        terminalreporter.write_line(
            "NEWSDESK_SKIP_BROWSER is set: the browser tests (tests/e2e/test_browser.py, test_outbox_browser.py)"
            " were skipped; unset it to run them (CI does)",
            yellow=True,
        )
