"""local.iam.grants: the grants each allowed call used, recorded by every process, and the check that fails on a
grant no call used unless the allow-list explains it."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.iam.calls import Call, Permission
from local.iam.grants import (
    AllowListEntry,
    Grant,
    GrantRecorder,
    check_least_privilege,
    load_allow_list,
    read_records,
    written,
)
from local.iam.policies import AccessPolicy, Role
from local.iam.ses_identities import SesState

ACCOUNT = "123456789012"
TABLE = f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/newsdesk-ArticlesTable"
QUEUE = f"arn:aws:sqs:eu-west-1:{ACCOUNT}:newsdesk-SendQueue"
TEMPLATE = "/srv/newsdesk"

# A role as function_roles_from_template makes it: resolved, and as the template writes it.
WRITTEN = {
    "Statement": [
        {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:Scan"],
         "Resource": [{"Fn::GetAtt": ["ArticlesTable", "Arn"]}, {"Fn::Sub": "${ArticlesTable.Arn}/index/*"}]},
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": {"Fn::GetAtt": ["SendQueue", "Arn"]}},
    ]
}  # fmt: skip
RESOLVED = {
    "Statement": [
        {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:Scan"], "Resource": [TABLE, f"{TABLE}/index/*"]},
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": QUEUE},
    ]
}
ROLE = Role("MailerFunction", "arn:role/Mailer", (RESOLVED,), (WRITTEN,), TEMPLATE)


def get_item_call() -> Call:
    return Call("dynamodb", "GetItem", "json", "eu-west-1", "key", (Permission("dynamodb:GetItem", TABLE),))


def grant(action: str, resource: str) -> Grant:
    return Grant("MailerFunction", action, resource)


def used_by_a_get_item(tmp_path: Path) -> set[Grant]:
    """What the processes recorded after the role made one GetItem (twice: recorded once)."""
    policy = AccessPolicy(ACCOUNT, {"MailerFunction": ROLE}, ses=lambda _r: SesState(frozenset()),
                          recorder=GrantRecorder(tmp_path))  # fmt: skip
    assert policy.check(get_item_call(), "MailerFunction") is None
    assert policy.check(get_item_call(), "MailerFunction") is None
    return read_records(tmp_path, TEMPLATE)


def test_an_allowed_call_marks_the_action_and_resource_pattern_that_allowed_it(tmp_path: Path) -> None:
    assert used_by_a_get_item(tmp_path) == {grant("dynamodb:GetItem", "${ArticlesTable.Arn}")}
    assert len(next(tmp_path.glob("*.jsonl")).read_text().splitlines()) == 1


def test_records_of_every_process_are_merged_and_other_templates_are_ignored(tmp_path: Path) -> None:
    GrantRecorder(tmp_path).record(TEMPLATE, [grant("sqs:SendMessage", "${SendQueue.Arn}")])
    GrantRecorder(tmp_path).record("/srv/fixture", [grant("dynamodb:Scan", "${ArticlesTable.Arn}")])

    assert used_by_a_get_item(tmp_path) == {
        grant("dynamodb:GetItem", "${ArticlesTable.Arn}"),
        grant("sqs:SendMessage", "${SendQueue.Arn}"),
    }


def test_a_refused_call_marks_nothing(tmp_path: Path) -> None:
    policy = AccessPolicy(ACCOUNT, {"MailerFunction": ROLE}, recorder=GrantRecorder(tmp_path))
    put = Call("dynamodb", "PutItem", "json", "eu-west-1", "key", (Permission("dynamodb:PutItem", TABLE),))

    assert policy.check(put, "MailerFunction") is not None
    assert read_records(tmp_path, TEMPLATE) == set()


def test_the_check_fails_on_a_grant_no_call_used_and_names_it(tmp_path: Path) -> None:
    report = check_least_privilege(ROLE.grants(), used_by_a_get_item(tmp_path), [])

    assert not report.ok
    assert report.unused == [
        grant("dynamodb:GetItem", "${ArticlesTable.Arn}/index/*"),
        grant("dynamodb:Scan", "${ArticlesTable.Arn}"),
        grant("dynamodb:Scan", "${ArticlesTable.Arn}/index/*"),
        grant("sqs:SendMessage", "${SendQueue.Arn}"),
    ]
    assert "  MailerFunction: dynamodb:Scan on ${ArticlesTable.Arn}" in report.lines()


def test_the_check_passes_when_the_allow_list_explains_every_unused_grant(tmp_path: Path) -> None:
    allow_list = [
        AllowListEntry("MailerFunction", "dynamodb:*", "${ArticlesTable.Arn}/index/*", "an index no test reads"),
        AllowListEntry("*", "dynamodb:Scan", "${ArticlesTable.Arn}", "a scan only an operator runs"),
        AllowListEntry("Mailer*", "sqs:SendMessage", "*", "only when SES throttles"),
    ]

    assert check_least_privilege(ROLE.grants(), used_by_a_get_item(tmp_path), allow_list).ok


def test_allow_list_entries_that_cover_nothing_or_only_used_grants_fail_the_check(tmp_path: Path) -> None:
    unused = AllowListEntry("*", "*", "*", "everything else")
    stale = AllowListEntry("EditorFunction", "*", "*", "a function without these grants")
    needless = AllowListEntry("MailerFunction", "dynamodb:GetItem", "${ArticlesTable.Arn}", "used after all")

    report = check_least_privilege(ROLE.grants(), used_by_a_get_item(tmp_path), [unused, stale, needless])

    assert (report.unused, report.stale, report.needless) == ([], [stale], [needless])


def test_the_allow_list_says_why_for_each_entry(tmp_path: Path) -> None:
    path = tmp_path / "allow.yaml"
    path.write_text("- {function: '*', action: 'xray:*', resource: '*', why: 'not emulated'}\n- {function: '*'}\n")

    with pytest.raises(ValueError, match="entry 2 lacks action, resource, why"):
        load_allow_list(path)


def test_the_projects_allow_list_loads_and_every_entry_has_a_reason() -> None:
    entries = load_allow_list(Path(__file__).parents[1] / "iam_allowlist.yaml")

    assert entries
    assert all(len(entry.why) > 20 for entry in entries)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ({"Fn::GetAtt": ["ArticlesTable", "Arn"]}, "${ArticlesTable.Arn}"),
        ({"Fn::GetAtt": "ArticlesTable.StreamArn"}, "${ArticlesTable.StreamArn}"),
        ({"Ref": "SigningSecret"}, "${SigningSecret}"),
        ({"Fn::Sub": "${SubscribersTable.Arn}/index/*"}, "${SubscribersTable.Arn}/index/*"),
        (
            {"Fn::Sub": ["arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${q}", {"q": {"Ref": "Q"}}]},
            "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${Q}",
        ),
        ({"Fn::Join": ["", ["arn:aws:s3:::", {"Ref": "Bucket"}, "/*"]]}, "arn:aws:s3:::${Bucket}/*"),
        ("*", "*"),
    ],
)
def test_grants_are_named_as_the_template_writes_them(value: object, shown: str) -> None:
    assert written(value) == shown
