"""What every test process needs before any product module is imported, as Lambda has it at start: the
template's layer ahead of the venv on the import path (local/lambda_runtime/layer.py), and the Powertools settings."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.lambda_runtime import layer
from local.template.model import load_template

# Before any test module imports the product: its packages then come from the layer built from
# shared/requirements.txt, not from the venv that runs pytest and moto (a package the venv has and the
# layer lacks fails here as it fails on Lambda). Built once per change of the requirements; under
# pytest-xdist the controller builds it before the workers start. The template is read with local.template.model
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


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """What the product logs (Powertools' JSON lines), as CloudWatch would keep it."""
    from newsdesk.observability import logger

    captured = io.StringIO()
    previous = logger.registered_handler.setStream(captured)  # type: ignore[attr-defined]
    try:
        yield captured
    finally:
        logger.registered_handler.setStream(previous)  # type: ignore[attr-defined]


# ------------------------------------------------------------------------- least privilege (local.iam.grants)
# When the whole suite runs (`make test`, or pytest without paths, -k, -m or --deselect), every process
# records the grants of the functions' roles its calls used in one folder (NEWSDESK_GRANTS_DIR: the xdist
# workers and the local stacks they start inherit it), and the controller then fails the run on a grant no
# test used that tests/iam_allowlist.yaml does not explain. A part of the suite records and checks nothing.
# Set NEWSDESK_GRANTS_DIR yourself to keep the record.

ALLOW_LIST = Path(__file__).with_name("iam_allowlist.yaml")
_GRANTS_FOLDER = pytest.StashKey[tuple[Path, bool]]()
_GRANTS_SUMMARY = pytest.StashKey[str]()
LOCAL_API = "http://127.0.0.1:3000"  # any: the grants are named as the template writes them


def _runs_whole_suite(config: pytest.Config) -> bool:
    option = config.option
    parts = (option.keyword, option.markexpr, option.deselect, getattr(option, "lf", False), option.collectonly)
    return config.args_source is pytest.Config.ArgsSource.TESTPATHS and not any(parts)


def pytest_configure(config: pytest.Config) -> None:
    from local.iam.grants import GRANTS_DIR_VARIABLE

    if hasattr(config, "workerinput") or not _runs_whole_suite(config):
        return
    given = os.environ.get(GRANTS_DIR_VARIABLE)
    folder = Path(given) if given else Path(tempfile.mkdtemp(prefix="newsdesk-grants-"))
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[GRANTS_DIR_VARIABLE] = str(folder)
    config.stash[_GRANTS_FOLDER] = (folder, not given)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # On the controller, after every worker finished (and stopped the local stacks it started).
    from _pytest.reports import TestReport

    from local.iam.grants import check_least_privilege, load_allow_list, read_records
    from local.iam.policies import function_roles_from_template
    from local.stack import local_resolver, project_template

    found = session.config.stash.get(_GRANTS_FOLDER, None)
    if found is None:
        return
    folder, made_here = found
    try:
        if exitstatus != pytest.ExitCode.OK or not session.testscollected:
            return  # a failed run may have stopped before the tests that use a grant
        granted = {
            grant
            for role in function_roles_from_template(local_resolver(api_url=LOCAL_API)).values()
            for grant in role.grants()
        }
        used = read_records(folder, str(project_template().root))
        report = check_least_privilege(granted, used, load_allow_list(ALLOW_LIST))
        if report.ok:
            session.config.stash[_GRANTS_SUMMARY] = (
                f"least privilege: every one of the {report.granted} grants of the functions' roles was used by a "
                f"test or is allow-listed ({ALLOW_LIST.name})"
            )
            return
        failure = TestReport(
            nodeid="template.yaml::least-privilege",
            location=("template.yaml", None, "least-privilege"),
            keywords={},
            outcome="failed",
            longrepr="\n".join(report.lines()),
            when="call",
        )
        session.config.hook.pytest_runtest_logreport(report=failure)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    finally:
        if made_here:
            shutil.rmtree(folder, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    summary = terminalreporter.config.stash.get(_GRANTS_SUMMARY, None)
    if summary:
        terminalreporter.write_line(summary)
    # Said last, where it is read: a run that skipped the browser tests did not check what a browser shows.
    skipped = terminalreporter.stats.get("skipped", [])
    if any("NEWSDESK_SKIP_BROWSER" in str(getattr(report, "longrepr", "")) for report in skipped):
        terminalreporter.write_line(
            "NEWSDESK_SKIP_BROWSER is set: the browser tests (tests/e2e/test_browser.py, test_outbox_browser.py)"
            " were skipped; unset it to run them (CI does)",
            yellow=True,
        )
