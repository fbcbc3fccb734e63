"""local.template.model: short tags, SAM globals, routes, schedules, intrinsics; local.aws.embedded builds tables from
it."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from local.aws.embedded import create_queues, create_tables
from local.stack import local_resolver
from local.template.model import Template, load_template, load_yaml
from local.template.resolver import Resolver, check_parameters

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "local_stack" / "template.yaml"


@pytest.fixture(scope="module")
def fixture() -> Template:
    return load_template(FIXTURE)


@pytest.fixture(scope="module")
def project() -> Template:
    return load_template(ROOT / "template.yaml")


def test_short_tags_become_long_forms() -> None:
    data = load_yaml(
        """
        a: !Ref Thing
        b: !GetAtt Table.StreamArn
        c: !Sub "${AWS::Region}-x"
        d: !Join [",", [!Ref A, b]]
        e: !If [Cond, !Select [0, [x, y]], !Split [",", "a,b"]]
        f: !GetAtt [Queue, Arn]
        g: !Equals [!Ref P, x]
        """
    )

    assert data == {
        "a": {"Ref": "Thing"},
        "b": {"Fn::GetAtt": ["Table", "StreamArn"]},
        "c": {"Fn::Sub": "${AWS::Region}-x"},
        "d": {"Fn::Join": [",", [{"Ref": "A"}, "b"]]},
        "e": {"Fn::If": ["Cond", {"Fn::Select": [0, ["x", "y"]]}, {"Fn::Split": [",", "a,b"]}]},
        "f": {"Fn::GetAtt": ["Queue", "Arn"]},
        "g": {"Fn::Equals": [{"Ref": "P"}, "x"]},
    }


def test_project_routes_and_auth(project: Template) -> None:
    routes = {route.route_key: route for route in project.routes}

    assert routes["GET /articles/{slug}"].function_id == "PublicFunction"
    assert not routes["GET /articles"].auth_required
    assert routes["POST /admin/articles/{article_id}/publish"].auth_required
    assert all(route.auth_required == route.path.startswith("/admin") for route in routes.values())
    assert project.authorizer_function == "AuthorizerFunction"
    assert {table.logical_id for table in project.tables} >= {"ArticlesTable", "PublicationsTable", "TokensTable"}


def test_project_functions_load_from_their_code_uri(project: Template) -> None:
    for function in project.functions.values():
        assert function.module_file == ROOT / "functions" / function.code_dir.name / "app.py"
        assert (function.handler_module, function.handler_function) == ("app", "lambda_handler")
    assert project.layer_dirs == [ROOT / "shared"]


def test_functions_merge_globals(fixture: Template) -> None:
    api = fixture.functions["ApiFunction"]

    assert api.code_dir == FIXTURE.parent / "functions"
    assert api.handler_function == "api"
    assert (api.memory_size, api.timeout) == (256, 10)
    assert api.environment["ROLE"] == "api"
    assert api.environment["GREETING"] == {"Ref": "Greeting"}
    assert [event.name for event in fixture.functions["WorkerFunction"].events_of("SQS")] == ["Jobs"]


def test_routes_with_default_and_opted_out_auth(fixture: Template) -> None:
    routes = {route.route_key: route for route in fixture.routes}

    assert set(routes) == {
        "GET /items",
        "GET /items/{id}",
        "GET /items/special",
        "ANY /items/{id}",
        "GET /files/{proxy+}",
        "POST /secure",
        "GET /unpermitted",
    }
    secure = routes["POST /secure"].authorizer
    assert secure is not None
    assert (secure.function_id, secure.identity_headers, secure.simple_responses) == (
        "AuthorizerFunction",
        ("Authorization",),
        True,
    )
    assert routes["GET /items"].authorizer is None
    assert (routes["GET /unpermitted"].function_id, routes["GET /unpermitted"].authorizer) == ("ApiFunction", None)


BODY_TEMPLATE = """
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Token
        Authorizers:
          Token: {FunctionArn: !GetAtt Check.Arn, EnableSimpleResponses: true}
          Other: {FunctionArn: !GetAtt Check.Arn, Identity: {Headers: [X-Key]}}
      DefinitionBody:
        openapi: "3.0.1"
        paths:
          "/things/{id}":
            parameters: [{name: id, in: path, required: true}]
            get:
              x-amazon-apigateway-integration: {$ref: "#/components/x-amazon-apigateway-integrations/things"}
              security: [{NONE: []}]
            delete:
              x-amazon-apigateway-integration: {$ref: "#/components/x-amazon-apigateway-integrations/things"}
            patch:
              x-amazon-apigateway-integration: {$ref: "#/components/x-amazon-apigateway-integrations/things"}
              security: []
            x-amazon-apigateway-any-method:
              x-amazon-apigateway-integration: {$ref: "#/components/x-amazon-apigateway-integrations/things"}
              security: [{Other: []}]
          /$default:
            x-amazon-apigateway-any-method:
              operationId: Fallback
              x-amazon-apigateway-integration:
                type: aws_proxy
                httpMethod: POST
                payloadFormatVersion: 2.0
                uri: !Sub
                  - arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/${Target}/invocations
                  - Target: !GetAtt Fallback.Arn
        components:
          x-amazon-apigateway-integrations:
            things:
              type: aws_proxy
              httpMethod: POST
              payloadFormatVersion: "2.0"
              uri: !Sub arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/${Things.Arn}/invocations
  Check: {Type: AWS::Serverless::Function, Properties: {Handler: app.check}}
  Things: {Type: AWS::Serverless::Function, Properties: {Handler: app.things}}
  Fallback: {Type: AWS::Serverless::Function, Properties: {Handler: app.fallback}}
"""


def body_template(text: str = BODY_TEMPLATE) -> Template:
    return Template(data=load_yaml(text), root=ROOT)


def test_routes_of_a_definition_body_with_the_authorizers_sam_gives_them() -> None:
    routes = {route.route_key: route for route in body_template().routes}

    assert {key: route.function_id for key, route in routes.items()} == {
        "GET /things/{id}": "Things",
        "DELETE /things/{id}": "Things",
        "PATCH /things/{id}": "Things",
        "ANY /things/{id}": "Things",
        "$default": "Fallback",
    }
    authorizers = {key: route.authorizer.name if route.authorizer else None for key, route in routes.items()}
    # No security, or an empty list (SAM treats both alike), is the DefaultAuthorizer; NONE is none.
    assert authorizers == {
        "GET /things/{id}": None,
        "DELETE /things/{id}": "Token",
        "PATCH /things/{id}": "Token",
        "ANY /things/{id}": "Other",
        "$default": "Token",
    }
    assert routes["$default"].event_name == "Fallback"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('payloadFormatVersion: "2.0"', 'payloadFormatVersion: "1.0"'), "only Lambda proxy integrations"),
        (("type: aws_proxy\n              httpMethod", "type: http_proxy\n              httpMethod"), "only Lambda"),
        (("${Things.Arn}", "arn:aws:lambda:us-east-1:123456789012:function:elsewhere"), "only Lambda proxy"),
        (
            (
                'integrations/things"}\n              security: [{NONE',
                'integrations/thing"}\n              security: [{NONE',
            ),
            "no integration '#/components/x-amazon-apigateway-integrations/thing'",
        ),
        (("security: [{Other: []}]", "security: [{Other: []}, {Token: []}]"), "names one authorizer (or NONE)"),
        (("security: [{Other: []}]", "security: [{}]"), "names one authorizer (or NONE)"),
        (("security: [{Other: []}]", "security: [{Jwt: []}]"), "no Lambda authorizer 'Jwt'"),
    ],
)
def test_a_definition_body_the_local_stack_cannot_serve_as_deployed_is_refused(
    change: tuple[str, str], message: str
) -> None:
    assert change[0] in BODY_TEMPLATE
    template = body_template(BODY_TEMPLATE.replace(*change, 1))

    with pytest.raises(ValueError, match=re.escape(message)):
        _ = template.routes


def test_schedules(fixture: Template) -> None:
    schedules = {schedule.name: schedule for schedule in fixture.schedules}

    assert schedules["EveryMinute"].expression == "rate(1 minute)"
    assert (schedules["Nightly"].kind, schedules["Nightly"].timezone) == ("ScheduleV2", "Europe/Paris")
    assert schedules["Nightly"].input == '{"job": "nightly"}'
    assert not schedules["Paused"].enabled


def test_resolver_names_and_arns(fixture: Template) -> None:
    resolver = Resolver(fixture, region="eu-west-1")

    assert resolver.ref("EventsTable") == "newsdesk-local-EventsTable"
    assert resolver.ref("UploadsBucket") == "newsdesk-local-uploadsbucket"
    assert resolver.physical_name("OrdersQueue") == "newsdesk-local-OrdersQueue.fifo"
    assert resolver.ref("JobsQueue") == "https://sqs.eu-west-1.amazonaws.com/123456789012/newsdesk-local-JobsQueue"
    assert resolver.get_att("JobsQueue", "Arn") == "arn:aws:sqs:eu-west-1:123456789012:newsdesk-local-JobsQueue"
    assert resolver.get_att("UploadsBucket", "Arn") == "arn:aws:s3:::newsdesk-local-uploadsbucket"
    assert resolver.resolve(fixture.resources["JobsQueue"].properties)["RedrivePolicy"] == {
        "deadLetterTargetArn": "arn:aws:sqs:eu-west-1:123456789012:newsdesk-local-JobsDeadLetterQueue",
        "maxReceiveCount": 2,
    }


def test_resolver_intrinsics(fixture: Template) -> None:
    resolver = Resolver(fixture, parameter_overrides={"Greeting": "HELLO"})
    resolver.record("EventsTable", "StreamArn", "arn:stream")

    assert resolver.resolve(
        {
            "sub": {"Fn::Sub": "${AWS::Region}/${EventsTable}/${EventsTable.StreamArn}/${!Literal}"},
            "sub_vars": {"Fn::Sub": ["${X}-${Greeting}", {"X": {"Ref": "AWS::AccountId"}}]},
            "join": {"Fn::Join": ["-", ["a", {"Ref": "Greeting"}, 3]]},
            "if": {"Fn::If": ["IsLoud", "loud", "quiet"]},
            "gone": {"Ref": "AWS::NoValue"},
            "list": ["a", {"Ref": "AWS::NoValue"}],
        }
    ) == {
        "sub": "us-east-1/newsdesk-local-EventsTable/arn:stream/${Literal}",
        "sub_vars": "123456789012-HELLO",
        "join": "a-HELLO-3",
        "if": "loud",
        "list": ["a"],
    }


def test_environment_is_strings_and_conflicts_are_logged(fixture: Template, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="local.template.model"):
        environment = Resolver(fixture).environment()

    assert environment["GREETING"] == "hello"
    assert environment["VOLUME"] == "quiet"
    assert environment["EVENTS_TABLE"] == "newsdesk-local-EventsTable"
    assert environment["ROLE"] == "api"
    assert "ROLE" in caplog.text
    assert "TickFunction" in caplog.text


@mock_aws
def test_create_tables_from_the_template(project: Template) -> None:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")

    names = create_tables(dynamodb, project)

    articles = dynamodb.describe_table(TableName=names["ArticlesTable"])["Table"]
    assert articles["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    declared = project.resources["ArticlesTable"].properties["GlobalSecondaryIndexes"]
    assert {index["IndexName"] for index in articles["GlobalSecondaryIndexes"]} == {
        index["IndexName"] for index in declared
    }
    for table in project.tables:
        described = dynamodb.describe_table(TableName=names[table.logical_id])["Table"]
        assert described["KeySchema"] == table.properties["KeySchema"]
        stream = table.properties.get("StreamSpecification")
        if stream:
            assert described["StreamSpecification"] == {"StreamEnabled": True, **stream}


@mock_aws
def test_create_queues_dead_letter_first(fixture: Template) -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    resolver = Resolver(fixture)

    names = create_queues(sqs, fixture, resolver)

    attributes = sqs.get_queue_attributes(QueueUrl=resolver.ref("JobsQueue"), AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "1"
    assert '"maxReceiveCount": 2' in attributes["RedrivePolicy"]
    assert names["OrdersQueue"].endswith(".fifo")


@pytest.mark.parametrize(
    ("value", "refusal"),
    [
        ({"SiteUrl": "news.example.org"}, r"^Parameter 'SiteUrl' must match pattern \^https\?://\[\^\\s\]\+\$$"),
        # The pattern must match the whole value, as CloudFormation matches it.
        ({"SiteUrl": "https://news.example.org and more"}, "Parameter 'SiteUrl' must match pattern"),
        ({"MailerConcurrency": "1"}, "^Parameter 'MailerConcurrency' must be a number not less than 2$"),
        ({"MailerConcurrency": "1001"}, "^Parameter 'MailerConcurrency' must be a number not greater than 1000$"),
        ({"SendRatePerSecond": "fast"}, "^Parameter 'SendRatePerSecond' must be a number$"),
        ({"TrackEngagement": "yes"}, "^Parameter 'TrackEngagement' must be one of AllowedValues$"),
        ({"LogRetentionDays": "2"}, "^Parameter 'LogRetentionDays' must be one of AllowedValues$"),
        # A ConstraintDescription is what CloudFormation says instead of its own words.
        ({"SenderAddress": "newsroom"}, "^Parameter SenderAddress failed to satisfy constraint: an email address"),
    ],
)
def test_local_parameters_are_refused_where_cloudformation_refuses_them(value: dict[str, str], refusal: str) -> None:
    with pytest.raises(ValueError, match=refusal):
        local_resolver(api_url="http://127.0.0.1:3000", parameters=value)


def test_every_refused_parameter_is_named_and_good_values_pass() -> None:
    with pytest.raises(ValueError, match=r"'SiteUrl' must match .*; Parameter 'MailerConcurrency' must be a number"):
        local_resolver(api_url="http://127.0.0.1:3000", parameters={"SiteUrl": "x", "MailerConcurrency": "many"})

    resolver = local_resolver(
        api_url="http://127.0.0.1:3000",
        parameters={"SiteUrl": "https://news.example.org", "MailerConcurrency": "4", "LogRetentionDays": "14"},
    )
    assert resolver.ref("SiteUrl") == "https://news.example.org"


def test_the_length_limits_of_a_parameter_are_checked() -> None:
    template = Template(
        data={"Parameters": {"Code": {"Type": "String", "MinLength": 2, "MaxLength": 3}}, "Resources": {}},
        root=ROOT,
    )

    check_parameters(template, {"Code": "ab"})
    with pytest.raises(ValueError, match=r"^Parameter 'Code' must contain at least 2 characters$"):
        check_parameters(template, {"Code": "a"})
    with pytest.raises(ValueError, match=r"^Parameter 'Code' must contain at most 3 characters$"):
        check_parameters(template, {"Code": "abcd"})
