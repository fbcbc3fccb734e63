"""The HTTP API as `sam deploy` makes it: the routes SAM deploys are the routes the local stack serves (with
the same authorizer), API Gateway may invoke each function through its routes only, and no function's
resource-based policy can outgrow Lambda's 20 KB, whatever the number of routes and the stack's name.

Policies are written as Lambda stores them (local.apigateway.invoke_policies), with every name as long as it can be.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import replace
from typing import Any

import pytest

from local.apigateway.invoke_policies import API_GATEWAY, POLICY_SIZE_LIMIT, InvokePolicies, function_policies
from local.lambda_runtime.events import ApiContext, HttpRequest, execute_api_arn, route_arn
from local.template.model import FUNCTION, HTTP_API, INTEGRATION, INTEGRATIONS, Template
from local.template.resolver import Resolver
from local.template.sam import expand

PARAMETERS = {"SenderAddress": "newsletter@example.org"}
LONGEST_STACK_NAME = "newsdesk-" + "x" * 119  # CloudFormation's limit: 128 characters
API_ID = "a1b2c3d4e5"  # API Gateway's ids are ten characters


class DeployedNames(Resolver):
    """Names and ARNs as CloudFormation makes them: a function's name is the stack's, its logical id and a
    random suffix, cut to Lambda's 64 characters; the API's id is API Gateway's."""

    def physical_name(self, logical_id: str) -> str:
        resource = self.template.resources[logical_id]
        if resource.type == FUNCTION and "FunctionName" not in resource.properties:
            return f"{self.prefix}-{logical_id}-{'X' * 13}"[:64]
        return super().physical_name(logical_id)

    def ref(self, name: str) -> Any:
        resource = self.template.resources.get(name)
        return API_ID if resource is not None and resource.type == HTTP_API else super().ref(name)


def deployed(template: Template, stack_name: str) -> Resolver:
    # The longest partition and region names (aws-us-gov, ap-southeast-2) and a 12-digit account: every
    # ARN a policy holds is as long as any stack of this name can make it.
    return DeployedNames(
        template,
        region="ap-southeast-2",
        account_id="123456789012",
        parameter_overrides=PARAMETERS,
        prefix=stack_name,
        partition="aws-us-gov",
    )


def policy_sizes(template: Template, stack_name: str) -> dict[str, int]:
    """Bytes of each function's resource-based policy, as Lambda stores it (compact JSON)."""
    policies = function_policies(deployed(template, stack_name))
    return {function_id: len(json.dumps(policy, separators=(",", ":"))) for function_id, policy in policies.items()}


def with_a_route_event_per_route(template: Template) -> Template:
    """The template as it was: every route a function's HttpApi event (SAM adds a permission for each)."""
    data = copy.deepcopy(template.data)
    resources = data["Resources"]
    del resources["HttpApi"]["Properties"]["DefinitionBody"]
    for name in [name for name, body in resources.items() if body["Type"] == "AWS::Lambda::Permission"]:
        del resources[name]
    for number, route in enumerate(template.routes):
        properties = {"ApiId": {"Ref": "HttpApi"}, "Path": route.path, "Method": route.method}
        if not route.auth_required:
            properties["Auth"] = {"Authorizer": "NONE"}
        events = resources[route.function_id]["Properties"].setdefault("Events", {})
        events[f"Route{number}"] = {"Type": "HttpApi", "Properties": properties}
    return Template(data=data, root=template.root)


# ---------------------------------------------------------------------- resource policies


def test_no_function_resource_policy_outgrows_lambdas_limit_for_the_longest_stack_name(template: Template) -> None:
    sizes = policy_sizes(template, LONGEST_STACK_NAME)

    assert {"PublicFunction", "EditorFunction", "AuthorizerFunction"} <= set(sizes)
    assert max(sizes.values()) <= POLICY_SIZE_LIMIT, sizes


def test_the_size_check_finds_the_policy_a_permission_per_route_made(template: Template) -> None:
    # SAM's permission per route event: EditorFunction's 49 routes outgrew the limit for a stack named
    # newsdesk-staging in the regions and partitions with the longest names.
    old = with_a_route_event_per_route(template)

    assert policy_sizes(old, "newsdesk-staging")["EditorFunction"] > POLICY_SIZE_LIMIT
    assert policy_sizes(old, LONGEST_STACK_NAME)["EditorFunction"] > POLICY_SIZE_LIMIT


def test_api_gateway_has_one_permission_per_function_whatever_the_number_of_routes(template: Template) -> None:
    policies = function_policies(deployed(template, "newsdesk"))
    routed = {route.function_id for route in template.routes} | {"AuthorizerFunction"}

    for function_id in routed:
        statements = policies[function_id]["Statement"]
        assert [statement["Principal"] for statement in statements] == [{"Service": API_GATEWAY}], function_id
    assert sum(route.function_id == "EditorFunction" for route in template.routes) > 40


def sample_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "sample", path)


def test_api_gateway_may_invoke_each_function_through_its_routes_and_the_editor_only_for_admin(
    template: Template,
) -> None:
    resolver = deployed(template, "newsdesk")
    policies = InvokePolicies(function_policies(resolver))
    api = ApiContext(api_id=API_ID, account_id=resolver.account_id, region=resolver.region, partition="aws-us-gov")

    def allowed(function_id: str, method: str, path: str, api: ApiContext = api) -> bool:
        return policies.allows(function_id, API_GATEWAY, route_arn(HttpRequest(method, sample_path(path)), api))

    for route in template.routes:
        assert allowed(route.function_id, route.method, route.path), route.route_key
        if route.authorizer is not None:
            source = execute_api_arn(api, f"authorizers/{route.authorizer.name}")
            assert policies.allows(route.authorizer.function_id, API_GATEWAY, source), route.route_key
    public = [route for route in template.routes if not route.path.startswith("/admin")]
    assert public
    assert not any(allowed("EditorFunction", route.method, route.path) for route in public)
    # Only through this API: the same route of another API may not invoke the function.
    assert not allowed("PublicFunction", "GET", "/articles", replace(api, api_id="zzzzzzzzzz"))


# ---------------------------------------------------------------------- the routes SAM deploys


@pytest.fixture(scope="module")
def expanded(template: Template) -> dict[str, Any]:
    return expand(template, PARAMETERS)


def deployed_target(expanded: dict[str, Any], reference: Any, conditions: dict[str, bool]) -> str:
    """What a reference of the expanded template names once deployed with `conditions`: a function's logical id,
    or `alias <function>` for an alias SAM made of it."""
    if isinstance(reference, dict) and "Fn::If" in reference:
        condition, if_true, if_false = reference["Fn::If"]
        return deployed_target(expanded, if_true if conditions[condition] else if_false, conditions)
    if isinstance(reference, dict) and "Fn::GetAtt" in reference:
        logical_id, attribute = reference["Fn::GetAtt"]
        assert attribute == "Arn"
        return str(logical_id)
    if isinstance(reference, dict) and "Ref" in reference:
        resource = expanded["Resources"][reference["Ref"]]
        if resource["Type"] == "AWS::Lambda::Alias":
            return f"alias {deployed_target(expanded, resource['Properties']['FunctionName'], conditions)}"
        assert resource["Type"] == "AWS::Lambda::Function"
        return str(reference["Ref"])
    raise AssertionError(f"not a function: {reference!r}")


def integration_target(expanded: dict[str, Any], uri: dict[str, Any], conditions: dict[str, bool]) -> str:
    """What an integration's `Fn::Sub` URI calls (`${F.Arn}`, or a variable naming it)."""
    sub = uri["Fn::Sub"]
    text, variables = sub if isinstance(sub, list) else (sub, {})
    (name,) = [name for name in re.findall(r"\$\{([^}]+)\}", text) if not name.startswith("AWS::")]
    return deployed_target(expanded, variables.get(name, {"Fn::GetAtt": name.split(".")}), conditions)


def deployed_routes(
    expanded: dict[str, Any], conditions: dict[str, bool] | None = None
) -> set[tuple[str, str, str, str | None]]:
    """(method, path, function, authorizer) of every operation of the API's body as SAM expands it (deployed
    with `conditions`: SnapStart off by default)."""
    conditions = conditions or {"SnapStartOn": False}
    (api,) = [body for body in expanded["Resources"].values() if body["Type"] == "AWS::ApiGatewayV2::Api"]
    body = api["Properties"]["Body"]
    shared = body.get("components", {}).get(INTEGRATIONS, {})
    found = set()
    for path, item in body["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            integration = operation[INTEGRATION]
            integration = shared[integration["$ref"].rsplit("/", 1)[1]] if "$ref" in integration else integration
            function_id = integration_target(expanded, integration["uri"], conditions)
            ((authorizer,),) = [list(requirement) for requirement in operation["security"]]
            found.add((method.upper(), path, function_id, None if authorizer == "NONE" else authorizer))
    return found


def test_the_local_stack_serves_the_routes_sam_deploys_with_the_same_authorizers(
    template: Template, expanded: dict[str, Any]
) -> None:
    local = {
        (route.method, route.path, route.function_id, route.authorizer.name if route.authorizer else None)
        for route in template.routes
    }

    assert deployed_routes(expanded) == local
    assert len(local) == len(template.routes) > 70


@pytest.mark.parametrize("security", [[], None])
def test_an_operation_without_security_gets_the_default_authorizer_from_sam_and_locally(
    template: Template, security: list[Any] | None
) -> None:
    data = copy.deepcopy(template.data)
    operation = data["Resources"]["HttpApi"]["Properties"]["DefinitionBody"]["paths"]["/articles"]["get"]
    if security is None:
        del operation["security"]
    else:
        operation["security"] = security
    changed = Template(data=data, root=template.root)

    local = {route.route_key: route for route in changed.routes}["GET /articles"]
    assert local.authorizer is not None
    assert ("GET", "/articles", "PublicFunction", local.authorizer.name) in deployed_routes(expand(changed, PARAMETERS))


# ------------------------------------------------------------------------------------------------ SnapStart
HTTP_FUNCTIONS = ("AuthorizerFunction", "PublicFunction", "EditorFunction")


def api_callers(expanded: dict[str, Any], conditions: dict[str, bool]) -> dict[str, set[str]]:
    """What API Gateway calls and may invoke, deployed with `conditions`: the routes' integrations, the
    authorizer's URI, and the functions (or aliases) its Lambda permissions name."""
    (api,) = [body for body in expanded["Resources"].values() if body["Type"] == "AWS::ApiGatewayV2::Api"]
    schemes = api["Properties"]["Body"]["components"]["securitySchemes"]
    permissions = [
        body["Properties"]
        for body in expanded["Resources"].values()
        if body["Type"] == "AWS::Lambda::Permission" and body["Properties"]["Principal"] == API_GATEWAY
    ]
    return {
        "routes": {function for _, _, function, _ in deployed_routes(expanded, conditions)},
        "authorizer": {
            integration_target(expanded, scheme["x-amazon-apigateway-authorizer"]["authorizerUri"], conditions)
            for scheme in schemes.values()
        },
        "permissions": {deployed_target(expanded, p["FunctionName"], conditions) for p in permissions},
    }


@pytest.mark.parametrize("enabled", [False, True], ids=["default", "EnableSnapStart=true"])
def test_snapstart_is_a_parameter_that_points_the_api_at_published_versions_only_when_on(
    template: Template, enabled: bool
) -> None:
    parameters = PARAMETERS | ({"EnableSnapStart": "true"} if enabled else {})
    expanded = expand(template, parameters)
    assert expanded["Conditions"]["SnapStartOn"] == {"Fn::Equals": [{"Ref": "EnableSnapStart"}, "true"]}
    conditions = {"SnapStartOn": enabled}
    resources = expanded["Resources"]

    for function_id in HTTP_FUNCTIONS:
        snap_start = resources[function_id]["Properties"]["SnapStart"]["Fn::If"]
        assert snap_start[0] == "SnapStartOn"
        assert snap_start[1 if enabled else 2] == (
            {"ApplyOn": "PublishedVersions"} if enabled else {"Ref": "AWS::NoValue"}
        )
        (alias,) = [body for body in resources.values() if body["Type"] == "AWS::Lambda::Alias"
                    and body["Properties"]["FunctionName"] == {"Ref": function_id}]  # fmt: skip
        assert alias["Properties"]["Name"] == "live"

    called = {f"alias {f}" if enabled else f for f in HTTP_FUNCTIONS}
    assert api_callers(expanded, conditions) == {
        "routes": called - {"alias AuthorizerFunction", "AuthorizerFunction"},
        "authorizer": called & {"alias AuthorizerFunction", "AuthorizerFunction"},
        "permissions": called,
    }


def test_locally_snapstart_changes_nothing_api_gateway_may_invoke(template: Template) -> None:
    """The local stack publishes no versions: a permission on an alias is its function's."""
    default = deployed(template, "newsdesk")
    with_snapstart = copy.copy(default)
    with_snapstart.parameter_overrides = PARAMETERS | {"EnableSnapStart": "true"}

    assert function_policies(with_snapstart) == function_policies(default)
