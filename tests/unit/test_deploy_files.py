"""The files a first deploy relies on say what the README says they do."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
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


def deploy_dry_run(*arguments: str, path: str | None = None, **environment: str) -> subprocess.CompletedProcess[str]:
    """`make -n deploy` as a deployer runs it, with only the region variables given here: not as a sub-make
    of `make test` (whose variables would make it print "Entering directory" lines)."""
    inherited = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "REGION", "AWS_DEFAULT_REGION", "AWS_REGION"}
    env = {key: value for key, value in os.environ.items() if key not in inherited} | environment
    if path is not None:
        env["PATH"] = f"{path}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        ["make", "--no-print-directory", "-n", "deploy", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_make_deploy_builds_then_deploys_with_the_parameters() -> None:
    dry_run = deploy_dry_run("SAM_BUILD_FLAGS=--use-container", "REGION=eu-west-1")

    lines = dry_run.stdout.splitlines()
    assert dry_run.returncode == 0, dry_run.stderr
    assert lines[0] == "sam build --use-container"
    assert "-m compileall" in lines[1]  # bytecode for what was built (test_make_bytecode_...)
    assert lines[2].startswith("sam deploy --region eu-west-1 ")
    assert "--parameter-overrides" in lines[2]


@pytest.mark.parametrize(
    ("arguments", "environment", "region"),
    [
        (["REGION=eu-west-1"], {}, "eu-west-1"),
        ([], {"AWS_DEFAULT_REGION": "ap-southeast-2"}, "ap-southeast-2"),
        (["REGION=eu-west-1"], {"AWS_DEFAULT_REGION": "ap-southeast-2"}, "eu-west-1"),
    ],
)
def test_make_deploy_deploys_to_the_region_named(
    arguments: list[str], environment: dict[str, str], region: str
) -> None:
    dry_run = deploy_dry_run(*arguments, **environment)

    deploy = [line for line in dry_run.stdout.splitlines() if line.startswith("sam deploy")]
    assert dry_run.returncode == 0, dry_run.stderr
    assert len(deploy) == 1
    assert f" --region {region} " in deploy[0]


@pytest.mark.parametrize("environment", [{}, {"AWS_REGION": "eu-west-1"}])
def test_make_deploy_refuses_to_guess_the_region(environment: dict[str, str]) -> None:
    # SAM CLI and boto3 do not read AWS_REGION: with it alone, sam deploy would go to the profile's region.
    dry_run = deploy_dry_run(**environment)

    assert dry_run.returncode != 0
    assert "sam " not in dry_run.stdout
    assert "REGION=" in dry_run.stderr
    assert "AWS_DEFAULT_REGION" in dry_run.stderr


@pytest.mark.parametrize(("exit_code", "container"), [(0, False), (127, True)])
def test_make_deploy_builds_in_a_container_unless_python313_runs(
    tmp_path: Path, exit_code: int, container: bool
) -> None:
    # A pyenv shim is found on the PATH whatever version is selected, and exits 127 when it is not.
    shim = tmp_path / "python3.13"
    shim.write_text(f"#!/bin/sh\nexit {exit_code}\n", encoding="utf-8")
    shim.chmod(0o755)

    dry_run = deploy_dry_run("REGION=eu-west-1", path=str(tmp_path))

    build, bytecode = dry_run.stdout.splitlines()[:2]
    assert dry_run.returncode == 0, dry_run.stderr
    assert build.split() == ["sam", "build", *(["--use-container"] if container else [])]
    # The bytecode needs the runtime's Python too: SAM's build image when python3.13 does not run.
    assert bytecode.startswith("docker run ") if container else bytecode.startswith("python3.13 -m compileall ")


def test_make_bytecode_leaves_every_module_bytecode_that_a_zips_1980_dates_do_not_invalidate(tmp_path: Path) -> None:
    built = tmp_path / ".aws-sam" / "build"
    (built / "NewsdeskLayer" / "python" / "package").mkdir(parents=True)
    (built / "NewsdeskLayer" / "python" / "package" / "__init__.py").write_text("ANSWER = 42\n", encoding="utf-8")
    (built / "PublicFunction").mkdir()
    (built / "PublicFunction" / "app.py").write_text("from package import ANSWER\n", encoding="utf-8")
    python313 = tmp_path / "bin" / "python3.13"  # the runtime's Python, here the one running the tests
    python313.parent.mkdir()
    python313.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n', encoding="utf-8")
    python313.chmod(0o755)
    env = {key: value for key, value in os.environ.items() if key not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    env["PATH"] = f"{python313.parent}{os.pathsep}{env['PATH']}"

    done = subprocess.run(
        ["make", "--no-print-directory", "bytecode", f"BUILD_DIR={built}"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    sources = sorted(built.rglob("*.py"))
    for source in sources:
        os.utime(source, (315532800, 315532800))  # as Lambda unpacks SAM's zip: 1980-01-01
        flags = int.from_bytes(Path(importlib.util.cache_from_source(str(source))).read_bytes()[4:8], "little")
        assert flags == 0b11, f"{source}: bytecode checked by date (flags {flags}) goes stale in the zip"
    assert len(sources) == 2


DEPLOY_DOCS = ("README.md", "docs/deploy.md", "samconfig.toml", "examples/github-actions.yml", "Makefile")
AWS_REGION = re.compile(r"\bAWS_REGION\b")


def paragraphs(text: str) -> list[str]:
    """Blocks of text between blank lines (a comment block, a list item with its continuation lines)."""
    return [block for block in re.split(r"\n\s*#?\s*\n|\n(?=\s*[-|] )", text) if block.strip()]


def test_deploy_docs_name_the_region_variable_sam_reads() -> None:
    # `AWS_REGION` may appear only beside `AWS_DEFAULT_REGION`, where the text says which one SAM reads.
    misleading = [
        f"{name}: {block.strip()[:120]}"
        for name in DEPLOY_DOCS
        for block in paragraphs((ROOT / name).read_text(encoding="utf-8"))
        if AWS_REGION.search(block) and "AWS_DEFAULT_REGION" not in block
    ]
    guide = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")

    assert misleading == []
    assert "export AWS_PROFILE=<profile> AWS_DEFAULT_REGION=" in guide


def test_the_region_check_catches_a_guide_that_exports_aws_region() -> None:
    old_guide = "```sh\nexport AWS_PROFILE=<profile> AWS_REGION=eu-west-1\nmake deploy\n```\n"

    assert [block for block in paragraphs(old_guide) if AWS_REGION.search(block)]
    assert not [block for block in paragraphs(old_guide) if "AWS_DEFAULT_REGION" in block]


def test_the_readme_deploy_example_is_complete_for_a_sandbox_account() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    deploying = readme[readme.index("## Deploying") :]
    command = next(line for line in deploying.splitlines() if line.startswith("NEWSDESK_PARAMETERS="))
    parameters = dict(item.split("=", 1) for item in shlex.split(command.split("=", 1)[1].rstrip(" \\"))[0].split())

    assert parameters["SendRatePerSecond"] == "1"  # the SES sandbox's rate
    assert parameters["CreateEmailIdentity"] == "true"
    assert "@" in parameters["AlarmEmail"]
    assert {"SenderAddress", "SiteUrl"} <= set(parameters)
    assert "make deploy REGION=" in deploying


def test_the_workflow_tests_everything_and_deploys_tags_with_oidc() -> None:
    workflow = yaml.safe_load((ROOT / "examples" / "github-actions.yml").read_text(encoding="utf-8"))
    test, deploy = workflow["jobs"]["test"], workflow["jobs"]["deploy"]

    assert {"run": "make test"} in test["steps"]
    assert deploy["needs"] == "test"
    assert deploy["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert deploy["permissions"]["id-token"] == "write"
    credentials = next(step for step in deploy["steps"] if "configure-aws-credentials" in step.get("uses", ""))
    assert "role-to-assume" in credentials["with"]
    assert credentials["with"]["aws-region"]  # exported as AWS_DEFAULT_REGION, which `make deploy` requires
    assert "aws-access-key-id" not in credentials["with"]
    assert any(step.get("run") == "make deploy" for step in deploy["steps"])


def test_the_deploy_role_trusts_the_subject_githubs_token_carries_for_the_deploy_job() -> None:
    # A job that names an environment gets `sub = repo:<owner>/<repo>:environment:<name>`, whatever its ref.
    workflow = yaml.safe_load((ROOT / "examples" / "github-actions.yml").read_text(encoding="utf-8"))
    environment = workflow["jobs"]["deploy"]["environment"]
    trust = json.loads((ROOT / "examples" / "deploy-role-trust.json").read_text(encoding="utf-8"))
    (statement,) = trust["Statement"]
    conditions = statement["Condition"]

    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"].endswith(":oidc-provider/token.actions.githubusercontent.com")
    assert conditions["StringEquals"] == {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
        "token.actions.githubusercontent.com:sub": f"repo:OWNER/REPO:environment:{environment}",
    }
    assert set(conditions) == {"StringEquals"}  # no wildcard subject beside it
    comment = (ROOT / "examples" / "github-actions.yml").read_text(encoding="utf-8").split("\nname:")[0]
    assert f"repo:<owner>/<repo>:environment:{environment}" in comment
    assert ":ref:refs/tags/v*" not in comment


def test_the_deploy_role_passes_roles_only_to_lambda_and_the_scheduler() -> None:
    policy = json.loads((ROOT / "examples" / "deploy-role-policy.json").read_text(encoding="utf-8"))
    passing = [
        statement
        for statement in policy["Statement"]
        if any(action in ("iam:PassRole", "iam:*", "*") for action in _as_list(statement["Action"]))
    ]

    (statement,) = passing
    assert statement["Resource"] == "arn:aws:iam::ACCOUNT_ID:role/newsdesk-*"
    assert statement["Condition"] == {
        "StringEquals": {"iam:PassedToService": ["lambda.amazonaws.com", "scheduler.amazonaws.com"]}
    }
    # Any service's every action only on resources of its own: never `service:*` on everything.
    assert not [
        statement["Sid"]
        for statement in policy["Statement"]
        if any(str(action).endswith("*") for action in _as_list(statement["Action"]))
        and "*" in _as_list(statement["Resource"])
    ]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
