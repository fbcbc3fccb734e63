"""Read the SAM template: CloudFormation short tags, SAM Globals, routes, event sources and intrinsics."""

from __future__ import annotations

import base64
import logging
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"  # moto's default account: ARNs must agree with what moto answers
NAME_PREFIX = "newsdesk-local"
LOCAL_API_ID = "local"
IMPLICIT_HTTP_API = "ServerlessHttpApi"

TABLE = "AWS::DynamoDB::Table"
QUEUE = "AWS::SQS::Queue"
BUCKET = "AWS::S3::Bucket"
FUNCTION = "AWS::Serverless::Function"
HTTP_API = "AWS::Serverless::HttpApi"
LAYER = "AWS::Serverless::LayerVersion"
TOPIC = "AWS::SNS::Topic"
SECRET = "AWS::SecretsManager::Secret"  # noqa: S105 - a resource type, not a password
SSM_PARAMETER = "AWS::SSM::Parameter"
SES_CONFIGURATION_SET = "AWS::SES::ConfigurationSet"
SES_EMAIL_IDENTITY = "AWS::SES::EmailIdentity"
LOG_GROUP = "AWS::Logs::LogGroup"
EVENT_BUS = "AWS::Events::EventBus"
EVENT_RULE = "AWS::Events::Rule"

# Property that names a resource explicitly, when the template sets one.
_NAME_PROPERTY = {
    TABLE: "TableName",
    QUEUE: "QueueName",
    BUCKET: "BucketName",
    FUNCTION: "FunctionName",
    TOPIC: "TopicName",
    SECRET: "Name",
    SSM_PARAMETER: "Name",
    SES_CONFIGURATION_SET: "Name",
    SES_EMAIL_IDENTITY: "EmailIdentity",
    LOG_GROUP: "LogGroupName",
    LAYER: "LayerName",
    EVENT_BUS: "Name",
    EVENT_RULE: "Name",
}


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns `!Ref X` and `!Fn X` into CloudFormation's long forms."""


def _construct_short_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_short_tag)


def load_yaml(text: str) -> Any:
    """Parse CloudFormation YAML, short tags included."""
    return yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass


def _merge(base: Any, own: Any) -> Any:
    """SAM's Globals rule: maps merge, lists add up (globals first), a function's own scalar wins."""
    if isinstance(base, dict) and isinstance(own, dict):
        merged = dict(base)
        for key, value in own.items():
            merged[key] = _merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(own, list):
        return base + own
    return own


@dataclass(frozen=True)
class Resource:
    logical_id: str
    type: str
    properties: dict[str, Any]
    condition: str | None = None


@dataclass(frozen=True)
class EventSource:
    function_id: str
    name: str
    type: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class Function:
    logical_id: str
    code_dir: Path
    handler: str
    memory_size: int
    timeout: int
    environment: dict[str, Any]
    events: tuple[EventSource, ...] = ()
    layer_dirs: tuple[Path, ...] = ()
    reserved_concurrency: int | None = None

    @property
    def handler_module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def handler_function(self) -> str:
        return self.handler.rsplit(".", 1)[1]

    @property
    def module_file(self) -> Path:
        return self.code_dir / (self.handler_module.replace(".", "/") + ".py")

    def events_of(self, event_type: str) -> list[EventSource]:
        return [event for event in self.events if event.type == event_type]


@dataclass(frozen=True)
class Authorizer:
    name: str
    function_id: str
    identity_headers: tuple[str, ...] = ("Authorization",)
    identity_query: tuple[str, ...] = ()
    simple_responses: bool = True


@dataclass(frozen=True)
class Route:
    method: str  # upper case, or ANY
    path: str  # "/articles/{slug}", or "$default"
    function_id: str
    event_name: str
    authorizer: Authorizer | None = None

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"

    @property
    def auth_required(self) -> bool:
        return self.authorizer is not None


@dataclass(frozen=True)
class Schedule:
    function_id: str
    name: str
    kind: str  # "Schedule" (EventBridge rule) or "ScheduleV2" (EventBridge Scheduler)
    expression: str
    enabled: bool = True
    input: Any = None
    timezone: str = "UTC"


@dataclass
class Template:
    """A parsed SAM template; `root` is the folder CodeUri and ContentUri are relative to."""

    data: dict[str, Any]
    root: Path

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        return dict(self.data.get("Parameters") or {})

    @property
    def globals(self) -> dict[str, Any]:
        return dict(self.data.get("Globals") or {})

    @cached_property
    def resources(self) -> dict[str, Resource]:
        return {
            logical_id: Resource(logical_id, body["Type"], dict(body.get("Properties") or {}), body.get("Condition"))
            for logical_id, body in (self.data.get("Resources") or {}).items()
        }

    def of_type(self, *types: str) -> list[Resource]:
        return [resource for resource in self.resources.values() if resource.type in types]

    @property
    def tables(self) -> list[Resource]:
        return self.of_type(TABLE)

    @property
    def queues(self) -> list[Resource]:
        return self.of_type(QUEUE)

    @property
    def buckets(self) -> list[Resource]:
        return self.of_type(BUCKET)

    @cached_property
    def functions(self) -> dict[str, Function]:
        defaults = dict(self.globals.get("Function") or {})
        functions = {}
        for resource in self.of_type(FUNCTION):
            props = _merge(defaults, resource.properties)
            code_uri = props.get("CodeUri", ".")
            if not isinstance(code_uri, str):
                raise ValueError(f"{resource.logical_id}: only a local CodeUri folder is supported")
            events = tuple(
                EventSource(resource.logical_id, name, body["Type"], dict(body.get("Properties") or {}))
                for name, body in (resource.properties.get("Events") or {}).items()
            )
            functions[resource.logical_id] = Function(
                logical_id=resource.logical_id,
                code_dir=(self.root / code_uri).resolve(),
                handler=props["Handler"],
                memory_size=int(props.get("MemorySize", 128)),
                timeout=int(props.get("Timeout", 3)),
                environment=dict((props.get("Environment") or {}).get("Variables") or {}),
                events=events,
                layer_dirs=tuple(self._layer_dir(layer) for layer in props.get("Layers") or []),
                reserved_concurrency=(
                    int(props["ReservedConcurrentExecutions"]) if "ReservedConcurrentExecutions" in props else None
                ),
            )
        return functions

    def events_of(self, event_type: str) -> list[EventSource]:
        return [event for function in self.functions.values() for event in function.events_of(event_type)]

    @property
    def layer_dirs(self) -> list[Path]:
        """Folders of the template's own layers; Lambda puts their content on the import path."""
        return [
            (self.root / layer.properties["ContentUri"]).resolve()
            for layer in self.of_type(LAYER)
            if isinstance(layer.properties.get("ContentUri"), str)
        ]

    def _layer_dir(self, reference: Any) -> Path:
        layer = self.resources.get(reference["Ref"]) if isinstance(reference, dict) and "Ref" in reference else None
        if layer is None or layer.type != LAYER or not isinstance(layer.properties.get("ContentUri"), str):
            raise ValueError(f"only the template's own layers are supported locally, not {reference!r}")
        return (self.root / layer.properties["ContentUri"]).resolve()

    def http_api_properties(self, api_id: str) -> dict[str, Any]:
        own = self.resources[api_id].properties if api_id in self.resources else {}
        return dict(_merge(dict(self.globals.get("HttpApi") or {}), own))

    def authorizers(self, api_id: str) -> dict[str, Authorizer]:
        """The Lambda authorizers of one HTTP API (JWT authorizers are not emulated)."""
        auth = self.http_api_properties(api_id).get("Auth") or {}
        found = {}
        for name, body in (auth.get("Authorizers") or {}).items():
            target = body.get("FunctionArn")
            if not (isinstance(target, dict) and "Fn::GetAtt" in target):
                continue
            identity = body.get("Identity") or {}
            found[name] = Authorizer(
                name=name,
                function_id=target["Fn::GetAtt"][0],
                identity_headers=tuple(identity.get("Headers") or (() if identity else ("Authorization",))),
                identity_query=tuple(identity.get("QueryStrings") or ()),
                simple_responses=bool(body.get("EnableSimpleResponses", False)),
            )
        return found

    @cached_property
    def routes(self) -> list[Route]:
        routes = []
        for event in self.events_of("HttpApi"):
            props = event.properties
            api_ref = props.get("ApiId")
            api_id = api_ref["Ref"] if isinstance(api_ref, dict) else IMPLICIT_HTTP_API
            api_auth = self.http_api_properties(api_id).get("Auth") or {}
            wanted = (props.get("Auth") or {}).get("Authorizer", api_auth.get("DefaultAuthorizer"))
            authorizer = None
            if wanted and wanted != "NONE":
                known = self.authorizers(api_id)
                if wanted not in known:
                    raise ValueError(f"{event.function_id}.{event.name}: no Lambda authorizer {wanted!r}")
                authorizer = known[wanted]
            method = str(props.get("Method", "ANY")).upper()
            routes.append(
                Route(
                    method="ANY" if method in ("ANY", "X-AMAZON-APIGATEWAY-ANY-METHOD") else method,
                    path=props.get("Path", "$default"),
                    function_id=event.function_id,
                    event_name=event.name,
                    authorizer=authorizer,
                )
            )
        return routes

    @property
    def authorizer_function(self) -> str | None:
        """Logical id of the function behind the first HTTP API's default authorizer."""
        for api in self.of_type(HTTP_API) or [Resource(IMPLICIT_HTTP_API, HTTP_API, {})]:
            default = (self.http_api_properties(api.logical_id).get("Auth") or {}).get("DefaultAuthorizer")
            authorizer = self.authorizers(api.logical_id).get(default or "")
            if authorizer:
                return authorizer.function_id
        return None

    @property
    def schedules(self) -> list[Schedule]:
        found = []
        for event in self.events_of("Schedule") + self.events_of("ScheduleV2"):
            props = event.properties
            v2 = event.type == "ScheduleV2"
            state = str(props.get("State", "ENABLED")).upper()
            found.append(
                Schedule(
                    function_id=event.function_id,
                    name=event.name,
                    kind=event.type,
                    expression=props["ScheduleExpression" if v2 else "Schedule"],
                    enabled=bool(props.get("Enabled", True)) and state == "ENABLED",
                    input=props.get("Input"),
                    timezone=props.get("ScheduleExpressionTimezone", "UTC") if v2 else "UTC",
                )
            )
        return found


def load_template(path: str | Path) -> Template:
    path = Path(path).resolve()
    data = load_yaml(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "Resources" not in data:
        raise ValueError(f"{path} is not a CloudFormation template")
    return Template(data=data, root=path.parent)


LOCAL_SENDER = "newsroom@newsdesk.localhost"


def local_parameters(api_url: str) -> dict[str, str]:
    """Template parameters for the local stack: what a deployer passes to `sam deploy --guided`."""
    # Every script and test on this machine signs up from 127.0.0.1: not limited per source here (only here).
    return {
        "SenderAddress": LOCAL_SENDER,
        "CreateEmailIdentity": "true",
        "PublicApiUrl": api_url,
        "ExemptLoopbackFromSourceLimit": "true",
        # SES's events come at once locally: an email without one is known lost after seconds, not minutes.
        "ReconciliationWindowSeconds": "5",
        # Webhooks: retries after about 2 s rather than a minute, and receivers on this machine allowed.
        "WebhookRetryBaseSeconds": "2",
        "WebhookTargets": "public-and-loopback",
    }


def parameter_overrides(text: str, template: Template) -> dict[str, str]:
    """`Name=Value Other="two words"`, the syntax of `sam deploy --parameter-overrides`; an unknown name is
    refused, as CloudFormation refuses it."""
    overrides = {}
    for pair in shlex.split(text):
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise ValueError(f"{pair!r} is not Name=Value")
        if name not in template.parameters:
            raise ValueError(f"template.yaml has no parameter {name!r} (it has {', '.join(template.parameters)})")
        overrides[name] = value
    return overrides


_NO_VALUE = object()
_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")


class Resolver:
    """Resolves intrinsic functions to the names and ARNs of the local stack.

    Names are computed from logical ids; values only known once a resource exists (a stream ARN, a
    queue URL, a secret ARN) are recorded with `record` by whoever creates it, and win over computed ones.
    """

    def __init__(
        self,
        template: Template,
        region: str = "us-east-1",
        account_id: str = ACCOUNT_ID,
        parameter_overrides: dict[str, str] | None = None,
        prefix: str = NAME_PREFIX,
    ) -> None:
        self.template = template
        self.region = region
        self.account_id = account_id
        self.prefix = prefix
        self.parameter_overrides = dict(parameter_overrides or {})
        self._recorded: dict[tuple[str, str], str] = {}

    def record(self, logical_id: str, attribute: str, value: str) -> None:
        """Remember a value the emulator chose; `attribute` "Ref" overrides what Ref returns."""
        self._recorded[(logical_id, attribute)] = value

    def physical_name(self, logical_id: str) -> str:
        resource = self.template.resources[logical_id]
        explicit = resource.properties.get(_NAME_PROPERTY.get(resource.type, ""))
        if explicit is not None:
            return str(self.resolve(explicit))
        name = f"{self.prefix}-{logical_id}"
        if resource.type == BUCKET:
            return name.lower()  # bucket names must be lower case
        fifo = resource.properties.get("FifoQueue" if resource.type == QUEUE else "FifoTopic")
        if resource.type in (QUEUE, TOPIC) and _truthy(fifo):
            return name + ".fifo"
        return name

    def arn(self, logical_id: str) -> str:
        resource = self.template.resources[logical_id]
        name = self.physical_name(logical_id)
        region, account = self.region, self.account_id
        arns = {
            TABLE: f"arn:aws:dynamodb:{region}:{account}:table/{name}",
            QUEUE: f"arn:aws:sqs:{region}:{account}:{name}",
            BUCKET: f"arn:aws:s3:::{name}",
            FUNCTION: f"arn:aws:lambda:{region}:{account}:function:{name}",
            TOPIC: f"arn:aws:sns:{region}:{account}:{name}",
            SECRET: f"arn:aws:secretsmanager:{region}:{account}:secret:{name}",
            SSM_PARAMETER: f"arn:aws:ssm:{region}:{account}:parameter/{name.lstrip('/')}",
            SES_CONFIGURATION_SET: f"arn:aws:ses:{region}:{account}:configuration-set/{name}",
            LOG_GROUP: f"arn:aws:logs:{region}:{account}:log-group:{name}:*",
            LAYER: f"arn:aws:lambda:{region}:{account}:layer:{name}:1",
            EVENT_BUS: f"arn:aws:events:{region}:{account}:event-bus/{name}",
            EVENT_RULE: f"arn:aws:events:{region}:{account}:rule/{self._rule_path(resource, name)}",
        }
        if resource.type not in arns:
            raise ValueError(f"no local ARN for {logical_id} ({resource.type})")
        return self._recorded.get((logical_id, "Arn"), arns[resource.type])

    def _rule_path(self, rule: Resource, name: str) -> str:
        bus = self.resolve(rule.properties.get("EventBusName", "default"))
        bus_name = str(bus).rsplit("/", 1)[-1]
        return name if bus_name == "default" else f"{bus_name}/{name}"

    def queue_url(self, logical_id: str) -> str:
        default = f"https://sqs.{self.region}.amazonaws.com/{self.account_id}/{self.physical_name(logical_id)}"
        return self._recorded.get((logical_id, "QueueUrl"), default)

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.prefix,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.prefix}/local",
        }
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in pseudo:
            return pseudo[name]
        if name in self.template.parameters:
            if name in self.parameter_overrides:
                return self.parameter_overrides[name]
            if "Default" not in self.template.parameters[name]:
                raise ValueError(f"parameter {name} has no Default and no override")
            return _stringify(self.template.parameters[name]["Default"])
        if (name, "Ref") in self._recorded:
            return self._recorded[(name, "Ref")]
        resource = self.template.resources.get(name)
        if resource is None:
            raise ValueError(f"Ref to unknown name {name!r}")
        if resource.type == QUEUE:
            return self.queue_url(name)
        if resource.type in (TOPIC, SECRET, LAYER):
            return self.arn(name)
        if resource.type == EVENT_RULE:
            # Ref of a rule on a custom bus is "bus|name"; on the default bus, its name.
            path = self.arn(name).split(":rule/", 1)[1]
            return path.replace("/", "|")
        if resource.type in (HTTP_API, "AWS::ApiGatewayV2::Api"):
            return LOCAL_API_ID
        return self.physical_name(name)

    def get_att(self, logical_id: str, attribute: str) -> str:
        if (logical_id, attribute) in self._recorded:
            return self._recorded[(logical_id, attribute)]
        resource = self.template.resources.get(logical_id)
        if resource is None:
            raise ValueError(f"GetAtt on unknown resource {logical_id!r}")
        name = self.physical_name(logical_id) if resource.type in _NAME_PROPERTY else ""
        computed = {
            "Arn": lambda: self.arn(logical_id),
            "TopicArn": lambda: self.arn(logical_id),
            "StreamArn": lambda: f"{self.arn(logical_id)}/stream/local",
            "QueueUrl": lambda: self.queue_url(logical_id),
            "QueueName": lambda: name,
            "TopicName": lambda: name,
            "DomainName": lambda: f"{name}.s3.amazonaws.com",
            "RegionalDomainName": lambda: f"{name}.s3.{self.region}.amazonaws.com",
            "ApiEndpoint": lambda: f"https://{LOCAL_API_ID}.execute-api.{self.region}.amazonaws.com",
        }
        if attribute not in computed:
            raise ValueError(f"GetAtt {logical_id}.{attribute} is not emulated")
        return computed[attribute]()

    def condition(self, name: str) -> bool:
        return bool(self.resolve((self.template.data.get("Conditions") or {})[name]))

    def resolve(self, value: Any) -> Any:
        """Resolve every intrinsic function inside `value`; keys set to AWS::NoValue disappear."""
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._function(key[4:], arg)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _function(self, name: str, arg: Any) -> Any:
        if name == "GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return self.get_att(logical_id, self.resolve(attribute))
        if name == "Sub":
            return self._sub(*(arg if isinstance(arg, list) else [arg, {}]))
        if name == "If":
            condition, if_true, if_false = arg
            return self.resolve(if_true if self.condition(condition) else if_false)
        args = self.resolve(arg)
        if name == "Join":
            return str(args[0]).join(_stringify(item) for item in args[1])
        if name == "Select":
            return args[1][int(args[0])]
        if name == "Split":
            return str(args[1]).split(args[0])
        if name == "Equals":
            return _stringify(args[0]) == _stringify(args[1])
        if name == "Not":
            return not args[0]
        if name == "And":
            return all(args)
        if name == "Or":
            return any(args)
        if name == "FindInMap":
            return self.template.data["Mappings"][args[0]][args[1]][args[2]]
        if name == "Base64":
            return base64.b64encode(str(args).encode()).decode()
        if name == "GetAZs":
            return [f"{self.region}{zone}" for zone in "abc"]
        raise ValueError(f"Fn::{name} is not supported by the local runner")

    def _sub(self, text: str, variables: dict[str, Any]) -> str:
        values = {key: self.resolve(value) for key, value in variables.items()}

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in values:
                return _stringify(values[expression])
            if "." in expression and not expression.startswith("AWS::"):
                logical_id, attribute = expression.split(".", 1)
                return self.get_att(logical_id, attribute)
            return _stringify(self.ref(expression))

        return _SUB_VARIABLE.sub(replace, text)

    def function_environment(self, function: Function) -> dict[str, str]:
        """A function's environment variables as Lambda sets them: resolved, and all strings."""
        resolved = self.resolve(function.environment)
        return {key: _stringify(value) for key, value in resolved.items()}

    def environment(self, functions: Iterable[Function] | None = None) -> dict[str, str]:
        """One process environment for all functions; a variable that differs between them is logged."""
        merged: dict[str, str] = {}
        owner: dict[str, str] = {}
        for function in functions if functions is not None else self.template.functions.values():
            for key, value in self.function_environment(function).items():
                if key in merged and merged[key] != value:
                    log.warning(
                        "%s=%r in %s conflicts with %r in %s; the local runner shares one environment, "
                        "keeping the first",
                        key,
                        value,
                        function.logical_id,
                        merged[key],
                        owner[key],
                    )
                    continue
                merged.setdefault(key, value)
                owner.setdefault(key, function.logical_id)
        return merged


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _stringify(value: Any) -> str:
    """CloudFormation passes scalars on as strings: true -> "true", 30 -> "30"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
