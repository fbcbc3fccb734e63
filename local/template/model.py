"""The SAM template as a model: resources, SAM Globals, functions, routes, authorizers, event sources and
schedules. Resolving intrinsic functions to the local stack's names is local.template.resolver's job."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

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

# API Gateway's OpenAPI extensions: an operation's integration, and integrations shared by operations.
INTEGRATION = "x-amazon-apigateway-integration"
INTEGRATIONS = "x-amazon-apigateway-integrations"
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")

# Property that names a resource explicitly, when the template sets one.
NAME_PROPERTY = {
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


def load_yaml(text: str) -> Any:
    """Parse CloudFormation YAML with cfn-lint's loader (short tags become their long forms), as plain dicts,
    lists and strings."""
    return json.loads(json.dumps(cfn_yaml.loads(text)))


def _route_method(method: str) -> str:
    upper = method.upper()
    return "ANY" if upper in ("ANY", "X-AMAZON-APIGATEWAY-ANY-METHOD") else upper


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


def _async_invoke_config(config: dict[str, Any]) -> AsyncInvokeConfig:
    defaults = AsyncInvokeConfig()
    return AsyncInvokeConfig(
        max_retries=int(config.get("MaximumRetryAttempts", defaults.max_retries)),
        max_event_age_seconds=int(config.get("MaximumEventAgeInSeconds", defaults.max_event_age_seconds)),
        on_failure=(config.get("DestinationConfig") or {}).get("OnFailure"),
    )


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
class AsyncInvokeConfig:
    """How Lambda handles a failed asynchronous invocation (S3, SNS, EventBridge Scheduler) of a function:
    its `EventInvokeConfig`, with Lambda's defaults (two retries, six hours)."""

    max_retries: int = 2
    max_event_age_seconds: int = 21600
    # The OnFailure destination's Type and Destination, unresolved (!GetAtt Queue.Arn); None: dropped.
    on_failure: dict[str, Any] | None = field(default=None, compare=False)


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
    async_invoke: AsyncInvokeConfig = AsyncInvokeConfig()

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
    event_name: str  # the function's HttpApi event; in a DefinitionBody, the operationId ("" without one)
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
                async_invoke=_async_invoke_config(props.get("EventInvokeConfig") or {}),
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
            function_id = self.function_named(body.get("FunctionArn"))
            if function_id is None:
                continue
            identity = body.get("Identity") or {}
            found[name] = Authorizer(
                name=name,
                function_id=function_id,
                identity_headers=tuple(identity.get("Headers") or (() if identity else ("Authorization",))),
                identity_query=tuple(identity.get("QueryStrings") or ()),
                simple_responses=bool(body.get("EnableSimpleResponses", False)),
            )
        return found

    @cached_property
    def routes(self) -> list[Route]:
        """Every route of the template's HTTP APIs: the paths of an API's DefinitionBody and the functions'
        HttpApi events, each with the authorizer SAM gives it."""
        return self._definition_routes() + self._event_routes()

    def _route_authorizer(self, api_id: str, wanted: str | None, where: str) -> Authorizer | None:
        """The Lambda authorizer a route names (None: the API's DefaultAuthorizer), or None for NONE."""
        wanted = wanted or (self.http_api_properties(api_id).get("Auth") or {}).get("DefaultAuthorizer")
        if not wanted or wanted == "NONE":
            return None
        known = self.authorizers(api_id)
        if wanted not in known:
            raise ValueError(f"{where}: no Lambda authorizer {wanted!r}")
        return known[wanted]

    def _event_routes(self) -> list[Route]:
        routes = []
        for event in self.events_of("HttpApi"):
            props = event.properties
            api_ref = props.get("ApiId")
            api_id = api_ref["Ref"] if isinstance(api_ref, dict) else IMPLICIT_HTTP_API
            where = f"{event.function_id}.{event.name}"
            routes.append(
                Route(
                    method=_route_method(str(props.get("Method", "ANY"))),
                    path=props.get("Path", "$default"),
                    function_id=event.function_id,
                    event_name=event.name,
                    authorizer=self._route_authorizer(api_id, (props.get("Auth") or {}).get("Authorizer"), where),
                )
            )
        return routes

    def _definition_routes(self) -> list[Route]:
        """The operations of each HTTP API's DefinitionBody (OpenAPI 3), as API Gateway imports them."""
        routes = []
        for api in self.of_type(HTTP_API):
            body = self.http_api_properties(api.logical_id).get("DefinitionBody") or {}
            shared = (body.get("components") or {}).get(INTEGRATIONS) or {}
            for path, item in (body.get("paths") or {}).items():
                for method, operation in item.items():
                    if method == "parameters":  # the path's parameters, shared by its operations
                        continue
                    where = f"{api.logical_id} {method.upper()} {path}"
                    integration = operation.get(INTEGRATION) or {}
                    if "$ref" in integration:
                        name = str(integration["$ref"]).removeprefix(f"#/components/{INTEGRATIONS}/")
                        if name not in shared:
                            raise ValueError(f"{where}: no integration {integration['$ref']!r} in the components")
                        integration = shared[name]
                    # SAM gives the API's DefaultAuthorizer to an operation whose security is absent or empty.
                    security = operation.get("security") or [{"": []}]
                    if len(security) != 1 or len(security[0]) != 1:
                        raise ValueError(f"{where}: a route names one authorizer (or NONE) in its security")
                    routes.append(
                        Route(
                            method=_route_method(method),
                            path="$default" if path == "/$default" else path,
                            function_id=self._integrated_function(integration, where),
                            event_name=str(operation.get("operationId", "")),
                            authorizer=self._route_authorizer(api.logical_id, next(iter(security[0])), where),
                        )
                    )
        return routes

    def _integrated_function(self, integration: dict[str, Any], where: str) -> str:
        """The function of a Lambda proxy integration with payload 2.0, the only kind the local API runs."""
        uri = integration.get("uri")
        sub = uri.get("Fn::Sub") if isinstance(uri, dict) else None
        text, variables = sub if isinstance(sub, list) else (sub, {})
        functions = set()
        for name in _SUB_VARIABLE.findall(str(text or "")):
            value = variables.get(name, {"Fn::GetAtt": name})  # ${Function.Arn}, or a variable naming it
            function_id = self.function_named(value)
            if function_id is not None:
                functions.add(function_id)
        proxy = (integration.get("type"), str(integration.get("payloadFormatVersion"))) == ("aws_proxy", "2.0")
        if not proxy or len(functions) != 1:
            raise ValueError(f"{where}: only Lambda proxy integrations (payload 2.0) of the template's functions run")
        return functions.pop()

    def function_named(self, reference: Any) -> str | None:
        """The template's function that `reference` names: `!GetAtt F.Arn`, `!Ref F`, SAM's `!Ref F.Alias` (the
        local stack has no versions: an alias is its function), or an `!If` whose branches all name it."""
        if not isinstance(reference, dict) or len(reference) != 1:
            return None
        ((kind, argument),) = reference.items()
        named: set[str | None]
        if kind == "Fn::If" and isinstance(argument, list) and len(argument) == 3:
            named = {self.function_named(branch) for branch in argument[1:]}
        elif kind == "Fn::GetAtt":
            parts = argument if isinstance(argument, list) else str(argument).split(".", 1)
            named = {parts[0] if parts[-1] == "Arn" else None}
        elif kind == "Ref":
            name, _, attribute = str(argument).partition(".")
            named = {name if attribute in ("", "Alias") else None}
        else:
            return None
        found = named.pop() if len(named) == 1 else None
        return found if found in self.functions else None

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
