"""The template as CloudFormation receives it (expanded by the SAM translator, as `sam deploy` does): a
second stack fits beside the first, nothing is dropped after retries, every alarm reaches someone, the
API is throttled, open to the site's pages only and logs no query strings, and the layer ships a
botocore that matches its boto3.

Names and ARNs are resolved with the local runner's resolver, for a stack named as the tests choose.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
import uuid
from collections.abc import Iterator
from importlib.metadata import requires, version
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from local.template.model import LAYER, Template
from local.template.resolver import Resolver
from local.template.sam import expand, function_roles, managed_policy_document

ROOT = Path(__file__).resolve().parents[2]
PARAMETERS = {"SenderAddress": "newsletter@example.org"}
ALARM = "AWS::CloudWatch::Alarm"
QUEUE = "AWS::SQS::Queue"

# What names a resource where CloudFormation would otherwise make up a unique name itself.
NAME_PROPERTIES = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Lambda::LayerVersion": "LayerName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::Scheduler::ScheduleGroup": "Name",
    "AWS::Events::Rule": "Name",
    "AWS::Events::EventBus": "Name",
    "AWS::SSM::Parameter": "Name",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::SES::ConfigurationSet": "Name",
    "AWS::SES::EmailIdentity": "EmailIdentity",
}
# An SES identity is the sender's domain, one per account and region: only one of two stacks that send
# from the same domain creates it (CreateEmailIdentity, README "Deploying").
ONE_PER_ACCOUNT = {"EmailIdentity"}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resources(expanded: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {key: body for key, body in expanded["Resources"].items() if body["Type"] == resource_type}


class StackResolver(Resolver):
    """The local resolver, with a stack id that differs per stack as CloudFormation's (a UUID) does."""

    def ref(self, name: str) -> Any:
        if name == "AWS::StackId":
            stack_uuid = uuid.uuid5(uuid.NAMESPACE_URL, self.prefix)
            return f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.prefix}/{stack_uuid}"
        return super().ref(name)


def resolver(expanded: dict[str, Any], stack: str = "newsdesk", **parameters: str) -> Resolver:
    return StackResolver(Template(data=expanded, root=ROOT), prefix=stack, parameter_overrides=PARAMETERS | parameters)


def logical_id(reference: dict[str, Any]) -> str:
    """The resource a !Ref X or !GetAtt X.Attribute names."""
    return str(reference["Ref"] if "Ref" in reference else reference["Fn::GetAtt"][0])


def parameter_default(template: Template, name: str) -> float:
    return float(template.parameters[name]["Default"])


@pytest.fixture(scope="module")
def expanded(template: Template) -> dict[str, Any]:
    return expand(template, PARAMETERS)


# ---------------------------------------------------------------------- a second stack


def shared_names(expanded: dict[str, Any]) -> list[str]:
    """Resources that two stacks of this template (in one account and region) would both name alike."""
    named: dict[str, dict[str, str]] = {}
    for stack in ("newsdesk-production", "newsdesk-staging"):
        names = resolver(expanded, stack)
        for logical_id, body in expanded["Resources"].items():
            name = (body.get("Properties") or {}).get(NAME_PROPERTIES.get(body["Type"], ""))
            if name is not None and logical_id not in ONE_PER_ACCOUNT:
                named.setdefault(logical_id, {})[stack] = str(names.resolve(name))
    return [
        f"{logical_id} ({expanded['Resources'][logical_id]['Type']}) is named {set(both.values())} in both stacks"
        for logical_id, both in named.items()
        if len(set(both.values())) == 1
    ]


def test_a_second_stack_in_the_same_account_and_region_names_nothing_alike(expanded: dict[str, Any]) -> None:
    assert shared_names(expanded) == []


def test_schedules_are_named_by_cloudformation(expanded: dict[str, Any]) -> None:
    schedules = resources(expanded, "AWS::Scheduler::Schedule")

    assert len(schedules) == 3
    assert all("Name" not in body["Properties"] for body in schedules.values())


def test_the_check_catches_sams_default_schedule_names(template: Template) -> None:
    data = copy.deepcopy(template.data)
    for event in data["Resources"]["SchedulerFunction"]["Properties"]["Events"].values():
        event["Properties"].pop("OmitName", None)

    problems = shared_names(expand(Template(data=data, root=ROOT), PARAMETERS))

    assert any(problem.startswith("SchedulerFunctionPublishDue (AWS::Scheduler::Schedule)") for problem in problems)


def test_the_check_looks_at_named_resources(expanded: dict[str, Any]) -> None:
    named = [
        body
        for body in expanded["Resources"].values()
        if NAME_PROPERTIES.get(body["Type"], "") in body.get("Properties", {})
    ]

    assert len(named) >= 10  # log groups, the layer, the bucket, the API URL parameter


# ---------------------------------------------------------------------- the layer's SDK


def test_the_layer_ships_the_botocore_its_boto3_was_released_with(template: Template) -> None:
    (layer,) = template.of_type(LAYER)
    lines = (template.root / layer.properties["ContentUri"] / "requirements.txt").read_text().splitlines()
    pins = {
        requirement.name: str(requirement.specifier)
        for requirement in (Requirement(line) for line in lines if line.strip() and not line.startswith("#"))
    }

    boto3_pin, botocore_pin = pins.get("boto3", ""), pins.get("botocore", "")
    assert boto3_pin.startswith("=="), pins
    assert botocore_pin.startswith("=="), pins
    # The tests run with exactly what the layer ships, and boto3 accepts that botocore.
    assert (version("boto3"), version("botocore")) == (boto3_pin[2:], botocore_pin[2:])
    wanted = next(
        Requirement(r)
        for r in requires("boto3") or []
        if Requirement(r).name == "botocore" and not Requirement(r).marker
    )
    assert wanted.specifier.contains(botocore_pin[2:])


# ---------------------------------------------------------------------- nothing dropped after retries


def role_documents(expanded: dict[str, Any], function_id: str) -> Iterator[dict[str, Any]]:
    role = function_roles(expanded)[function_id]
    for policy in role.get("Policies") or []:
        yield policy["PolicyDocument"]
    for arn in role.get("ManagedPolicyArns") or []:
        yield managed_policy_document(arn)


def allows(expanded: dict[str, Any], function_id: str, action: str, arn: str) -> bool:
    """Whether the function's role allows `action` on the resource `arn` (as IAM matches wildcards)."""
    names = resolver(expanded)
    for document in role_documents(expanded, function_id):
        for statement in _as_list(document.get("Statement") or []):
            actions = [str(a).lower() for a in _as_list(statement.get("Action") or [])]
            if statement.get("Effect") != "Allow" or not any(fnmatch.fnmatchcase(action.lower(), a) for a in actions):
                continue
            for resource in _as_list(statement.get("Resource") or []):
                try:
                    pattern = str(names.resolve(resource))
                except ValueError:  # names something the resolver does not know: not one of our queues
                    continue
                if fnmatch.fnmatchcase(arn, pattern):
                    return True
    return False


def target_of(destination: Any) -> str:
    """The resource a destination's !GetAtt X.Arn names."""
    assert isinstance(destination, dict), destination
    assert destination.get("Fn::GetAtt", [None, None])[1] == "Arn", destination
    return str(destination["Fn::GetAtt"][0])


def async_failure_destinations(expanded: dict[str, Any]) -> dict[str, str]:
    """Function -> the queue its asynchronous invocations go to once Lambda stops retrying."""
    found = {}
    for body in resources(expanded, "AWS::Lambda::EventInvokeConfig").values():
        on_failure = body["Properties"].get("DestinationConfig", {}).get("OnFailure", {})
        found[body["Properties"]["FunctionName"]["Ref"]] = target_of(on_failure.get("Destination"))
    return found


def test_events_the_upload_function_keeps_failing_on_wait_in_a_queue_it_may_send_to(expanded: dict[str, Any]) -> None:
    queue = async_failure_destinations(expanded).get("UploadFunction")

    assert queue in resources(expanded, QUEUE), "UploadFunction has no OnFailure queue"
    assert allows(expanded, "UploadFunction", "sqs:SendMessage", resolver(expanded).arn(queue))


def test_every_function_invoked_asynchronously_has_a_failure_destination(expanded: dict[str, Any]) -> None:
    # S3, SNS and EventBridge Scheduler invoke asynchronously: after Lambda's retries the event is gone
    # unless it goes somewhere (a failed weekly digest would otherwise wait a week, silently).
    invoked = {
        logical_id(body["Properties"]["FunctionName"])
        for body in resources(expanded, "AWS::Lambda::Permission").values()
        if body["Properties"].get("Principal") in ("s3.amazonaws.com", "sns.amazonaws.com")
    }
    invoked |= {
        target_of(body["Properties"]["Target"]["Arn"])
        for body in resources(expanded, "AWS::Scheduler::Schedule").values()
    }
    destinations = async_failure_destinations(expanded)

    assert invoked == {"UploadFunction", "SchedulerFunction"}
    assert invoked <= set(destinations)
    for function_id in invoked:
        assert allows(expanded, function_id, "sqs:SendMessage", resolver(expanded).arn(destinations[function_id]))


def schedule_role_documents(expanded: dict[str, Any], schedule: dict[str, Any]) -> list[dict[str, Any]]:
    role = expanded["Resources"][target_of(schedule["Properties"]["Target"]["RoleArn"])]
    return [policy["PolicyDocument"] for policy in role["Properties"].get("Policies") or []]


def test_what_a_schedule_cannot_hand_to_lambda_waits_in_a_watched_queue(expanded: dict[str, Any]) -> None:
    schedules = resources(expanded, "AWS::Scheduler::Schedule")
    watched = {
        dimension["Value"]["Fn::GetAtt"][0]
        for alarm in alarms(expanded).values()
        if alarm.get("Namespace") == "AWS/SQS"
        for dimension in alarm["Dimensions"]
    }

    assert len(schedules) == 3
    for name, schedule in schedules.items():
        target = schedule["Properties"]["Target"]
        queue = target_of(target["DeadLetterConfig"]["Arn"])
        retry = target["RetryPolicy"]
        assert queue in resources(expanded, QUEUE), name
        assert queue in watched, name
        assert 0 <= retry["MaximumRetryAttempts"] <= 185, name  # Scheduler's own bounds
        assert 60 <= retry["MaximumEventAgeInSeconds"] <= 86400, name
        # SAM's role for the schedule may put the dead letter in the queue.
        statements = [
            statement
            for document in schedule_role_documents(expanded, schedule)
            for statement in _as_list(document["Statement"])
        ]
        assert {"Action": "sqs:SendMessage", "Effect": "Allow", "Resource": target["DeadLetterConfig"]["Arn"]} in (
            statements
        ), name


def test_a_weekly_digest_is_retried_for_a_day_and_a_job_run_every_minute_is_not(expanded: dict[str, Any]) -> None:
    policies = {
        json.loads(body["Properties"]["Target"]["Input"])["job"]: body["Properties"]["Target"]["RetryPolicy"]
        for body in resources(expanded, "AWS::Scheduler::Schedule").values()
    }

    assert policies["digest"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
    assert policies["publish-due"]["MaximumRetryAttempts"] == 0  # the next minute's run is the retry
    assert policies["housekeeping"]["MaximumEventAgeInSeconds"] < 24 * 3600  # before the next day's run


def test_ses_events_that_cannot_be_queued_or_applied_wait_in_a_dead_letter_queue(expanded: dict[str, Any]) -> None:
    (rule,) = [
        body["Properties"]
        for body in resources(expanded, "AWS::Events::Rule").values()
        if body["Properties"]["EventPattern"]["source"] == ["aws.ses"]
    ]
    (target,) = rule["Targets"]
    queue = target_of(target["Arn"])
    dead_letters = target_of(target["DeadLetterConfig"]["Arn"])

    assert queue == "SesEventsQueue"
    redrive = resources(expanded, QUEUE)[queue]["Properties"]["RedrivePolicy"]
    assert target_of(redrive["deadLetterTargetArn"]) == dead_letters
    assert dead_letters in resources(expanded, QUEUE)


def test_stream_batches_a_function_keeps_failing_on_are_recorded_in_a_queue(expanded: dict[str, Any]) -> None:
    streams = [
        body["Properties"]
        for body in resources(expanded, "AWS::Lambda::EventSourceMapping").values()
        if "StreamArn" in json.dumps(body["Properties"]["EventSourceArn"])
    ]

    # EventsFunction reads three streams (articles, subscribers, publications) for Newsdesk's events.
    assert sorted(mapping["FunctionName"]["Ref"] for mapping in streams) == [
        *["EventsFunction"] * 3,
        "FanoutFunction",
        "TallyFunction",
    ]
    for mapping in streams:
        queue = target_of(mapping.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"))
        assert queue in resources(expanded, QUEUE)
        assert allows(expanded, mapping["FunctionName"]["Ref"], "sqs:SendMessage", resolver(expanded).arn(queue))


# ---------------------------------------------------------------------- the redrive's permissions

SQS_ACTIONS = (
    "sqs:SendMessage",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:SetQueueAttributes",
    "sqs:PurgeQueue",
    "sqs:DeleteQueue",
    "sqs:StartMessageMoveTask",
    "sqs:ListMessageMoveTasks",
    "sqs:CancelMessageMoveTask",
)
MOVE_TASK_ON_SOURCE = ("sqs:StartMessageMoveTask", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")


def test_the_scheduler_may_redrive_the_delivery_dead_letters_and_do_nothing_else_with_queues(
    expanded: dict[str, Any],
) -> None:
    # What SQS requires of whoever starts a move task: four actions on the dead-letter queue, and
    # SendMessage on the queue the messages return to (which fan-out needs anyway).
    names = resolver(expanded)
    expected = {
        (action, dead) for dead in ("FanoutDeadLetterQueue", "SendDeadLetterQueue") for action in MOVE_TASK_ON_SOURCE
    }
    expected |= {("sqs:SendMessage", live) for live in ("FanoutQueue", "SendQueue")}
    # Lambda records a scheduled job that failed its retries in the schedules' dead-letter queue, as the function.
    expected |= {("sqs:SendMessage", "SchedulesDeadLetterQueue")}

    granted = {
        (action, queue)
        for queue in resources(expanded, QUEUE)
        for action in SQS_ACTIONS
        if allows(expanded, "SchedulerFunction", action, names.arn(queue))
    }

    assert granted == expected
    # And it keeps count of the rounds (services/scheduling.py) beside the publications.
    for action in ("dynamodb:GetItem", "dynamodb:UpdateItem"):
        assert allows(expanded, "SchedulerFunction", action, names.arn("PublicationsTable"))


# ---------------------------------------------------------------------- alarms that reach someone


def alarms(expanded: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {key: body["Properties"] for key, body in resources(expanded, ALARM).items()}


def test_every_alarm_notifies_the_alarm_topic(expanded: dict[str, Any]) -> None:
    found = alarms(expanded)

    assert len(found) >= 15  # guards against a check that looks at nothing
    for name, alarm in found.items():
        assert {"Ref": "AlarmTopic"} in alarm.get("AlarmActions", []), name
        assert {"Ref": "AlarmTopic"} in alarm.get("OKActions", []), name


@pytest.mark.parametrize(("address", "subscribed"), [("", False), ("ops@example.org", True)])
def test_the_alarm_email_is_subscribed_when_given(expanded: dict[str, Any], address: str, subscribed: bool) -> None:
    (subscription,) = [
        body
        for body in resources(expanded, "AWS::SNS::Subscription").values()
        if body["Properties"].get("Protocol") == "email"
    ]

    assert subscription["Properties"]["TopicArn"] == {"Ref": "AlarmTopic"}
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert resolver(expanded, AlarmEmail=address).condition(subscription["Condition"]) is subscribed


def test_every_function_has_an_errors_alarm(expanded: dict[str, Any]) -> None:
    watched = {
        dimension["Value"]["Ref"]
        for alarm in alarms(expanded).values()
        if (alarm.get("Namespace"), alarm.get("MetricName")) == ("AWS/Lambda", "Errors")
        for dimension in alarm["Dimensions"]
        if dimension["Name"] == "FunctionName"
    }

    assert watched == set(resources(expanded, "AWS::Lambda::Function"))


def test_every_function_is_watched_for_throttles_by_one_alarm_that_sums_them(expanded: dict[str, Any]) -> None:
    watched: list[str] = []
    for alarm in alarms(expanded).values():
        queries = alarm.get("Metrics") or []
        throttles = {
            query["Id"]: query["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Ref"]
            for query in queries
            if query.get("MetricStat", {}).get("Metric", {}).get("MetricName") == "Throttles"
        }
        if not throttles:
            continue
        (returned,) = [query for query in queries if query.get("ReturnData", True)]
        # Each term FILLed with 0: a function not invoked in the period has no datapoint, and a sum with a
        # missing term is missing, so the others' throttles would go unseen.
        terms = returned["Expression"].replace(" ", "").split("+")
        assert sorted(terms) == sorted(f"FILL({query_id},0)" for query_id in throttles)
        assert len(queries) <= 10 + 1  # CloudWatch's hard limit: 10 metrics in an alarm's math
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
        watched += throttles.values()

    assert sorted(watched) == sorted(resources(expanded, "AWS::Lambda::Function"))


def test_a_server_error_of_the_api_raises_an_alarm(expanded: dict[str, Any]) -> None:
    (alarm,) = [a for a in alarms(expanded).values() if a.get("Namespace") == "AWS/ApiGateway"]
    dimensions = {dimension["Name"]: dimension["Value"] for dimension in alarm["Dimensions"]}

    assert alarm["MetricName"] == "5xx"
    assert dimensions == {"ApiId": {"Ref": "HttpApi"}, "Stage": stage(expanded)["StageName"]}
    assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == ("Sum", "GreaterThanThreshold", 0)


def test_a_newsletter_batch_waiting_hours_raises_an_alarm_long_before_sqs_drops_it(expanded: dict[str, Any]) -> None:
    (alarm,) = [a for a in alarms(expanded).values() if a.get("MetricName") == "ApproximateAgeOfOldestMessage"]
    queue = alarm["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
    retention = resources(expanded, QUEUE)[queue]["Properties"].get("MessageRetentionPeriod", 4 * 24 * 3600)

    assert queue == "SendQueue"
    assert 3600 <= float(alarm["Threshold"]) <= float(retention) / 10


@pytest.mark.parametrize(
    ("metric", "aws_pauses_at"), [("Reputation.BounceRate", 0.10), ("Reputation.ComplaintRate", 0.005)]
)
def test_ses_reputation_alarms_fire_well_before_aws_pauses_sending(
    expanded: dict[str, Any], metric: str, aws_pauses_at: float
) -> None:
    (alarm,) = [
        a for a in alarms(expanded).values() if (a.get("Namespace"), a.get("MetricName")) == ("AWS/SES", metric)
    ]

    assert "Dimensions" not in alarm  # the account's rate, which is what AWS judges
    assert alarm["ComparisonOperator"] in ("GreaterThanThreshold", "GreaterThanOrEqualToThreshold")
    assert 0 < float(alarm["Threshold"]) <= aws_pauses_at / 2
    assert alarm["TreatMissingData"] == "notBreaching"  # no sending, no rate: nothing wrong


def test_a_stalled_stream_raises_an_alarm(expanded: dict[str, Any]) -> None:
    ages = [a for a in alarms(expanded).values() if a.get("MetricName") == "IteratorAge"]

    assert sorted(alarm["Dimensions"][0]["Value"]["Ref"] for alarm in ages) == [
        "EventsFunction",
        "FanoutFunction",
        "TallyFunction",
    ]
    # Well within the streams' 24 hours, after which unread records are gone.
    assert all(float(alarm["Threshold"]) <= 60 * 60 * 1000 for alarm in ages)


def test_every_queue_nothing_reads_has_an_alarm_on_what_waits_in_it(expanded: dict[str, Any]) -> None:
    read = {
        str(body["Properties"]["EventSourceArn"]["Fn::GetAtt"][0])
        for body in resources(expanded, "AWS::Lambda::EventSourceMapping").values()
    }
    dead_letter_queues = set(resources(expanded, QUEUE)) - read
    watched = {
        dimension["Value"]["Fn::GetAtt"][0]
        for alarm in alarms(expanded).values()
        if alarm.get("Namespace") == "AWS/SQS"
        for dimension in alarm["Dimensions"]
    }

    # 6, the events', the two webhook queues', the schedules' and the erasure queue's dead letters
    assert len(dead_letter_queues) == 11
    assert dead_letter_queues <= watched


# ---------------------------------------------------------------------- the API


def stage(expanded: dict[str, Any]) -> dict[str, Any]:
    (body,) = resources(expanded, "AWS::ApiGatewayV2::Stage").values()
    return dict(body["Properties"])


def test_every_route_is_throttled_and_sign_ups_more_strictly(template: Template, expanded: dict[str, Any]) -> None:
    settings = stage(expanded)
    default, subscribe = settings["DefaultRouteSettings"], settings["RouteSettings"]["POST /subscribers"]

    assert default == {"ThrottlingRateLimit": {"Ref": "ApiRateLimit"}, "ThrottlingBurstLimit": {"Ref": "ApiBurstLimit"}}
    assert subscribe == {
        "ThrottlingRateLimit": {"Ref": "SubscribeRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "SubscribeBurstLimit"},
    }
    assert set(settings["RouteSettings"]) <= {route.route_key for route in template.routes}
    assert parameter_default(template, "SubscribeRateLimit") < parameter_default(template, "ApiRateLimit")
    assert parameter_default(template, "SubscribeBurstLimit") < parameter_default(template, "ApiBurstLimit")


def test_pages_of_the_site_may_call_the_api_from_the_browser(template: Template) -> None:
    site = "https://news.example.org/latest/"
    expanded = expand(template, PARAMETERS | {"SiteUrl": site})
    (api,) = resources(expanded, "AWS::ApiGatewayV2::Api").values()
    cors = api["Properties"]["Body"]["x-amazon-apigateway-cors"]

    assert resolver(expanded, SiteUrl=site).resolve(cors["allowOrigins"]) == ["https://news.example.org"]
    assert set(cors["allowMethods"]) == {"GET", "POST"}
    # No Authorization header from other origins' pages: editor tokens are for tools, not for the site.
    assert [header.lower() for header in cors["allowHeaders"]] == ["content-type"]


# Context variables that never hold a path, a query string or a request body.
SAFE_LOG_VARIABLES = {
    "$context.requestId",
    "$context.requestTime",
    "$context.requestTimeEpoch",
    "$context.routeKey",
    "$context.httpMethod",
    "$context.protocol",
    "$context.status",
    "$context.responseLatency",
    "$context.integrationLatency",
    "$context.integrationStatus",
    "$context.responseLength",
    "$context.identity.sourceIp",
    "$context.identity.userAgent",
    "$context.error.message",
    "$context.error.responseType",
    "$context.integrationErrorMessage",
    "$context.authorizer.error",
}
LOG_VARIABLE = re.compile(r"\$[A-Za-z][\w.\-]*")


def access_log_problems(log_format: str) -> list[str]:
    """What an access log line of this format could leak, and whether it is JSON for Logs Insights."""
    problems = [
        f"{name} may hold a path or query"
        for name in LOG_VARIABLE.findall(log_format)
        if name not in SAFE_LOG_VARIABLES
    ]
    try:
        json.loads(LOG_VARIABLE.sub("x", log_format))
    except ValueError:
        problems.append("not JSON")
    return problems


def test_access_logs_record_routes_never_paths_or_query_strings(template: Template, expanded: dict[str, Any]) -> None:
    settings = stage(expanded)["AccessLogSettings"]
    log_group = target_of(settings["DestinationArn"])

    assert access_log_problems(settings["Format"]) == []
    assert "$context.routeKey" in settings["Format"]
    assert expanded["Resources"][log_group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


@pytest.mark.parametrize(
    ("log_format", "expected"),
    [
        ('{"path":"$context.path"}', "$context.path may hold"),
        ('{"token":"$request.querystring.token"}', "$request.querystring.token may hold"),
        ('{"route":"$context.routeKey",}', "not JSON"),
    ],
)
def test_the_access_log_check_catches_leaks(log_format: str, expected: str) -> None:
    assert any(problem.startswith(expected) for problem in access_log_problems(log_format))


# ---------------------------------------------------------------------- the CI deploy role


def test_the_ci_deploy_role_may_create_every_kind_of_resource_the_stack_holds(expanded: dict[str, Any]) -> None:
    # A service the policy forgets fails the first CI deploy half-way (and rolls it back).
    policy = json.loads((ROOT / "examples" / "deploy-role-policy.json").read_text(encoding="utf-8"))
    granted = {
        str(action).split(":", 1)[0]
        for statement in policy["Statement"]
        if statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"])
    }
    services = {
        {"apigatewayv2": "apigateway"}.get(kind, kind)
        for kind in (body["Type"].split("::")[1].lower() for body in expanded["Resources"].values())
    }

    assert services - granted == set()
    assert {"cloudformation", "iam", "s3"} <= granted  # the stack itself, its roles, SAM's artifacts


# ---------------------------------------------------------------------- sam delete


def kept(body: dict[str, Any]) -> tuple[str | None, str | None]:
    return body.get("DeletionPolicy"), body.get("UpdateReplacePolicy")


def test_the_signing_secret_is_kept_exactly_as_long_as_the_tables_holding_keys_derived_from_it(
    template: Template,
) -> None:
    # Recipient keys, pseudonyms and sealed webhook secrets in the tables are unreadable without the secret;
    # the rate-limit counters (RateLimitsTable) expire within a day and are not kept.
    resources = template.data["Resources"]
    tables = {
        logical_id: kept(body)
        for logical_id, body in resources.items()
        if body["Type"] == "AWS::DynamoDB::Table" and logical_id != "RateLimitsTable"
    }

    assert len(tables) >= 9
    assert set(tables.values()) == {kept(resources["SigningSecret"])}
    assert kept(resources["SigningSecret"]) == ("Retain", "Retain")  # README: a mistaken delete loses no one


def test_sam_delete_and_each_update_delete_the_layers_old_versions(expanded: dict[str, Any]) -> None:
    (layer,) = resources(expanded, "AWS::Lambda::LayerVersion").values()

    assert layer.get("DeletionPolicy") == "Delete"
