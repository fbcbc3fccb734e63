"""The files a first deploy relies on say what the README says they do."""

from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_samconfig_holds_safe_defaults_and_no_account() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))["default"]

    assert config["global"]["parameters"]["stack_name"] == "newsdesk"
    assert config["deploy"]["parameters"]["confirm_changeset"] is True
    assert config["deploy"]["parameters"]["capabilities"] == "CAPABILITY_IAM"
    assert config["sync"]["parameters"]["stack_name"] != "newsdesk"  # sam sync never aims at production
    assert "region" not in config["deploy"]["parameters"]
    assert "parameter_overrides" not in config["deploy"]["parameters"]


def test_make_deploy_builds_then_deploys_with_the_parameters() -> None:
    # Run as a deployer runs it: not as a sub-make of `make test` (whose variables would make it print
    # "Entering directory" lines).
    environment = {key: value for key, value in os.environ.items() if key not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "deploy", "SAM_BUILD_FLAGS=--use-container"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()

    assert dry_run[0] == "sam build --use-container"
    assert dry_run[1].startswith("sam deploy")
    assert "--parameter-overrides" in dry_run[1]


def test_the_workflow_tests_everything_and_deploys_tags_with_oidc() -> None:
    workflow = yaml.safe_load((ROOT / "examples" / "github-actions.yml").read_text(encoding="utf-8"))
    test, deploy = workflow["jobs"]["test"], workflow["jobs"]["deploy"]

    assert {"run": "make test"} in test["steps"]
    assert deploy["needs"] == "test"
    assert deploy["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert deploy["permissions"]["id-token"] == "write"
    credentials = next(step for step in deploy["steps"] if "configure-aws-credentials" in step.get("uses", ""))
    assert "role-to-assume" in credentials["with"]
    assert "aws-access-key-id" not in credentials["with"]
    assert any(step.get("run") == "make deploy" for step in deploy["steps"])
