"""Intrinsic functions and parameters: the template's values as the local stack deploys it (physical names,
ARNs, queue URLs, conditions, each function's environment)."""

from __future__ import annotations

import base64
import logging
import re
import shlex
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from local.template.model import (
    ACCOUNT_ID,
    BUCKET,
    EVENT_BUS,
    EVENT_RULE,
    FUNCTION,
    HTTP_API,
    LAYER,
    LOCAL_API_ID,
    LOG_GROUP,
    NAME_PREFIX,
    NAME_PROPERTY,
    QUEUE,
    SECRET,
    SES_CONFIGURATION_SET,
    SSM_PARAMETER,
    TABLE,
    TOPIC,
    Function,
    Resource,
    Template,
)

log = logging.getLogger(__name__)

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


def check_parameters(template: Template, values: Mapping[str, str]) -> None:
    """Refuse what CloudFormation would refuse at deploy, in its words, so that a stack that starts locally
    also deploys: each value against its parameter's Type (Number), AllowedValues, AllowedPattern (the whole
    value must match), MinValue/MaxValue and MinLength/MaxLength. ValueError names every parameter refused."""
    problems = [
        problem
        for name, value in values.items()
        if name in template.parameters and (problem := _parameter_problem(name, template.parameters[name], value))
    ]
    if problems:
        raise ValueError("; ".join(problems))


def _parameter_problem(name: str, declared: Mapping[str, Any], value: str) -> str | None:
    problem = _constraint_broken(name, declared, value)
    if problem is None:
        return None
    # A ConstraintDescription replaces CloudFormation's own words, whichever constraint failed.
    description = declared.get("ConstraintDescription")
    return f"Parameter {name} failed to satisfy constraint: {description}" if description else problem


def _constraint_broken(name: str, declared: Mapping[str, Any], value: str) -> str | None:
    if declared.get("Type", "String") == "Number":
        try:
            number = Decimal(value)
        except InvalidOperation:
            number = Decimal("NaN")
        if not number.is_finite():
            return f"Parameter '{name}' must be a number"
        if "MinValue" in declared and number < Decimal(str(declared["MinValue"])):
            return f"Parameter '{name}' must be a number not less than {declared['MinValue']}"
        if "MaxValue" in declared and number > Decimal(str(declared["MaxValue"])):
            return f"Parameter '{name}' must be a number not greater than {declared['MaxValue']}"
    allowed = declared.get("AllowedValues")
    if allowed is not None and value not in [_stringify(option) for option in allowed]:
        return f"Parameter '{name}' must be one of AllowedValues"
    pattern = declared.get("AllowedPattern")
    if pattern is not None and re.fullmatch(str(pattern), value) is None:
        return f"Parameter '{name}' must match pattern {pattern}"
    if "MinLength" in declared and len(value) < int(declared["MinLength"]):
        return f"Parameter '{name}' must contain at least {declared['MinLength']} characters"
    if "MaxLength" in declared and len(value) > int(declared["MaxLength"]):
        return f"Parameter '{name}' must contain at most {declared['MaxLength']} characters"
    return None


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
        partition: str = "aws",
    ) -> None:
        self.template = template
        self.region = region
        self.account_id = account_id
        self.partition = partition
        self.prefix = prefix
        self.parameter_overrides = dict(parameter_overrides or {})
        self._recorded: dict[tuple[str, str], str] = {}

    def record(self, logical_id: str, attribute: str, value: str) -> None:
        """Remember a value the emulator chose; `attribute` "Ref" overrides what Ref returns."""
        self._recorded[(logical_id, attribute)] = value

    def physical_name(self, logical_id: str) -> str:
        resource = self.template.resources[logical_id]
        explicit = resource.properties.get(NAME_PROPERTY.get(resource.type, ""))
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
        region, account, partition = self.region, self.account_id, self.partition
        arns = {
            TABLE: f"arn:{partition}:dynamodb:{region}:{account}:table/{name}",
            QUEUE: f"arn:{partition}:sqs:{region}:{account}:{name}",
            BUCKET: f"arn:{partition}:s3:::{name}",
            FUNCTION: f"arn:{partition}:lambda:{region}:{account}:function:{name}",
            TOPIC: f"arn:{partition}:sns:{region}:{account}:{name}",
            SECRET: f"arn:{partition}:secretsmanager:{region}:{account}:secret:{name}",
            SSM_PARAMETER: f"arn:{partition}:ssm:{region}:{account}:parameter/{name.lstrip('/')}",
            SES_CONFIGURATION_SET: f"arn:{partition}:ses:{region}:{account}:configuration-set/{name}",
            LOG_GROUP: f"arn:{partition}:logs:{region}:{account}:log-group:{name}:*",
            LAYER: f"arn:{partition}:lambda:{region}:{account}:layer:{name}:1",
            EVENT_BUS: f"arn:{partition}:events:{region}:{account}:event-bus/{name}",
            EVENT_RULE: f"arn:{partition}:events:{region}:{account}:rule/{self._rule_path(resource, name)}",
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
        stack = f"stack/{self.prefix}/local"
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.prefix,
            "AWS::StackId": f"arn:{self.partition}:cloudformation:{self.region}:{self.account_id}:{stack}",
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
        function_id, _, attribute = name.partition(".")
        if attribute == "Alias" and function_id in self.template.functions:
            # SAM's reference to the function's AutoPublishAlias: the local stack publishes no versions, so the
            # alias is the function itself (SnapStart, the reason for the alias, has no local effect).
            return self.arn(function_id)
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
        name = self.physical_name(logical_id) if resource.type in NAME_PROPERTY else ""
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
