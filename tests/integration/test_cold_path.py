"""What a cold start loads: each function imports what its first request needs and no more (the time it takes
is measured by bench/cold_start.py, never here). Handlers are imported in a clean interpreter with only the
function's code, the layer and the runtime's boto3 on the path, and the function's environment, as Lambda
starts them."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local.iam.policies import Credentials
from local.lambda_runtime.functions import lambda_environment
from local.stack import local_resolver, project_template
from local.template.model import Template
from newsdesk.api.openapi import include
from newsdesk.api.resolver import create_resolver
from newsdesk.api.routing import EDITOR_ROUTES, PUBLIC_ROUTES, Routes, router_for
from tests.support.events import sample_event

TIMEOUT_SECONDS = 120
ROUTER_MODULES = {routes.module for routes in (*PUBLIC_ROUTES, *EDITOR_ROUTES)} - {"newsdesk.api.routing"}

# Run as `python -I -S -c COLD_START <module> <event or "">`: import the handler module, then (with an event)
# let its resolver answer it; print the status, every module loaded, every pydantic model class created, the
# settings classes built, and what the garbage collector did during the import and is left doing.
COLD_START = """
import gc, importlib, json, os, sys
sys.path[:0] = os.environ["PYTHONPATH"].split(os.pathsep)
collections = sum(generation["collections"] for generation in gc.get_stats())
module = importlib.import_module(sys.argv[1])
collections = sum(generation["collections"] for generation in gc.get_stats()) - collections
collector = {"collections_during_load": collections, "enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}
status = None
if sys.argv[2]:
    status = module.app.resolve(json.loads(sys.argv[2]), None)["statusCode"]
from pydantic import BaseModel
classes, pending = set(), [BaseModel]
while pending:
    classes.update(found := set(pending.pop().__subclasses__()) - classes)
    pending.extend(found)
settings = sys.modules.get("newsdesk.settings")
built = sorted(
    name for name, kind in vars(settings).items()
    if isinstance(kind, type) and name.endswith("Settings") and kind.__dict__.get("__pydantic_complete__")
) if settings else []
models = sorted(f"{kind.__module__}.{kind.__qualname__}" for kind in classes)
plugins = getattr(sys.modules.get("pydantic.plugin._loader"), "_plugins", None)
print(json.dumps({"status": status, "modules": sorted(sys.modules), "models": models, "settings_built": built,
                  "plugins_looked_up": plugins is not None, "collector": collector}))
"""


def cold_start(
    template: Template,
    function_id: str,
    event: dict[str, Any] | None = None,
    *,
    script: str = COLD_START,
    lambda_variables: dict[str, str] | None = None,
) -> dict[str, Any]:
    function = template.functions[function_id]
    resolver = local_resolver(api_url="https://api.newsdesk.test", template=template)
    credentials = Credentials("ASIAEXAMPLEEXAMPLE00", "secret", "token")
    environment = lambda_environment(function, resolver, credentials, lambda_variables or {})
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script, function.handler_module, json.dumps(event) if event else ""],
        env=environment,
        cwd=function.code_dir,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, f"{function_id}: the cold start failed:\n{done.stderr[-3000:]}"
    answer: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return answer


def loaded(answer: dict[str, Any], *packages: str) -> list[str]:
    """The modules of `packages` (or modules) that the cold start loaded."""
    return [name for name in answer["modules"] if any(name == p or name.startswith(f"{p}.") for p in packages)]


def created(answer: dict[str, Any], *modules: str) -> list[str]:
    """The pydantic model classes of `modules` that the cold start created."""
    return [name for name in answer["models"] if name.rsplit(".", 1)[0] in modules]


def at_path(event: dict[str, Any], path: str) -> dict[str, Any]:
    """`event` (an HTTP API request) asking for `path` instead."""
    context = {**event["requestContext"], "http": {**event["requestContext"]["http"], "path": path}}
    return event | {"rawPath": path, "requestContext": context}


# ---------------------------------------------------------------------------------------------- routers
def sample_path(rule: str) -> str:
    return re.sub(r"<\w+>", "value", rule)


@pytest.mark.parametrize("routes", [PUBLIC_ROUTES, EDITOR_ROUTES], ids=["PublicFunction", "EditorFunction"])
def test_each_route_is_claimed_by_its_own_router_and_no_other(routes: tuple[Routes, ...]) -> None:
    for mine in routes:
        app = create_resolver()
        include(app, [mine.router()])
        for route in app._static_routes + app._dynamic_routes:
            path = sample_path(route.path)
            claimant = router_for(routes, path)
            assert claimant is mine, f"{route.method} {route.rule} is claimed by {claimant}, not {mine}"


def test_every_template_route_is_claimed_by_one_router_of_its_function(template: Template) -> None:
    routes = {"PublicFunction": PUBLIC_ROUTES, "EditorFunction": EDITOR_ROUTES}
    for route in template.routes:
        path = re.sub(r"\{\w+\}", "value", route.path)
        assert router_for(routes[route.function_id], path) is not None, f"{route.route_key} ({route.function_id})"


def test_a_http_function_imports_no_router_before_its_first_request(template: Template) -> None:
    for function_id in ("PublicFunction", "EditorFunction"):
        assert loaded(cold_start(template, function_id), *ROUTER_MODULES) == [], function_id


def test_a_request_loads_the_router_of_its_path_alone(template: Template) -> None:
    answer = cold_start(template, "PublicFunction", sample_event("public-index"))

    assert answer["status"] == 200
    assert loaded(answer, *ROUTER_MODULES) == ["newsdesk.api.public"]


def test_a_path_no_router_claims_loads_none_and_is_not_found(template: Template) -> None:
    event = at_path(sample_event("public-index"), "/nowhere") | {"routeKey": "GET /nowhere"}

    answer = cold_start(template, "PublicFunction", event)

    assert answer["status"] == 404
    assert loaded(answer, *ROUTER_MODULES) == []


def test_a_cold_article_read_creates_no_delivery_webhook_or_subscriber_model(template: Template) -> None:
    """An editor reading an article pays for the articles' routes, service and models alone: the newsletter's
    routes, the webhooks' and the mailing list's are other routers, and the outbox is written only by a
    publish. (An id that cannot exist is answered 404 without a call to AWS, after the whole route ran.)"""
    event = at_path(sample_event("editor-get-article"), "/admin/articles/no-such-article")
    event["pathParameters"] = {"article_id": "no-such-article"}

    answer = cold_start(template, "EditorFunction", event)

    assert answer["status"] == 404
    assert loaded(answer, *ROUTER_MODULES) == ["newsdesk.api.editor"]
    assert created(answer, "newsdesk.models.articles") != []
    others = ("delivery", "webhooks", "events", "subscribers", "topics", "tokens", "erasures", "uploads")
    assert created(answer, *(f"newsdesk.models.{name}" for name in others)) == []
    assert loaded(answer, "newsdesk.services.delivery", "newsdesk.dal.publications", "newsdesk.dal.ledger") == []


# ------------------------------------------------------------------------------------------ observability
def test_the_authorizer_loads_no_tracer_and_no_event_handler(template: Template) -> None:
    """It sits in front of every editor request and does one GetItem: X-Ray's SDK (with botocore's patching),
    Powertools' data classes and its event handler would each cost more than they tell."""
    answer = cold_start(template, "AuthorizerFunction")

    assert loaded(answer, "aws_xray_sdk") == []
    assert loaded(answer, "aws_lambda_powertools.event_handler", "aws_lambda_powertools.utilities.data_classes") == []


def test_the_authorizer_loads_no_articles_and_no_delivery_code(template: Template) -> None:
    """It reads a token and its person: the articles' data access and models, and the delivery's, are for
    the editor's writes (an author's profile shares the articles' table) and would be part of its cold start."""
    answer = cold_start(template, "AuthorizerFunction")

    assert loaded(answer, "newsdesk.dal.articles", "newsdesk.models.articles", "newsdesk.models.delivery") == []


# Run like COLD_START: import the articles' data access and read an article through a client that has none.
ARTICLE_READ = """
import json, os, sys
sys.path[:0] = os.environ["PYTHONPATH"].split(os.pathsep)
from newsdesk.dal.articles import ArticleRepository

class Client:
    def get_item(self, **request):
        return {}

found = ArticleRepository(Client(), "articles").get("a1")
print(json.dumps({"status": found, "modules": sorted(sys.modules)}))
"""


def test_reading_an_article_loads_none_of_the_records_its_writes_add(template: Template) -> None:
    """The mailer reads the article it sends: the audit trail's, revisions' and news entries' records (and the
    people's, sitemaps' and revisions' models) are written with an article's changes and load with the first."""
    answer = cold_start(template, "MailerFunction", script=ARTICLE_READ)

    assert answer["status"] is None
    write_side = ("newsdesk.dal.audit", "newsdesk.dal.revisions", "newsdesk.dal.news", "newsdesk.dal.publications")
    assert loaded(answer, *write_side, "newsdesk.models.audit", "newsdesk.models.revisions") == []
    assert loaded(answer, "newsdesk.models.news", "newsdesk.models.people") == []


# Run like COLD_START: import the handler module, then build the service its first SES event uses.
SES_FEEDBACK = """
import importlib, json, os, sys
sys.path[:0] = os.environ["PYTHONPATH"].split(os.pathsep)
importlib.import_module(sys.argv[1])
from newsdesk.dependencies import container
container().ses_feedback
print(json.dumps({"modules": sorted(sys.modules)}))
"""


def test_reading_ses_events_loads_no_delivery_service_and_no_articles_or_people(template: Template) -> None:
    """SES's events settle ledger records and suppress addresses: the delivery service (message building, pacing,
    CSV export), the subscription service (sign-ups and their emails), the articles' models and the tokens' and
    people's code are for other functions' cold starts."""
    answer = cold_start(template, "SesEventsFunction", script=SES_FEEDBACK)

    assert loaded(answer, "newsdesk.services.delivery", "newsdesk.models.articles", "newsdesk.services.tokens") == []
    assert loaded(answer, "newsdesk.services.subscriptions", "newsdesk.services.emails", "jinja2") == []
    assert loaded(answer, "newsdesk.services.ses_feedback") == ["newsdesk.services.ses_feedback"]


# ------------------------------------------------------------------------------------------- batches
RECORD_FUNCTIONS = ["FanoutFunction", "MailerFunction", "UploadFunction", "SesEventsFunction", "TallyFunction",
                    "EventsFunction", "WebhooksFunction", "ErasureFunction", "SchedulerFunction"]  # fmt: skip


@pytest.mark.parametrize("function_id", RECORD_FUNCTIONS)
def test_a_function_fed_records_loads_no_batch_processor_and_no_event_classes(
    template: Template, function_id: str
) -> None:
    """They read the records as the dicts Lambda sends and report their failures themselves (newsdesk.batches):
    Powertools' batch package loads every processor (and asyncio for the asynchronous ones), and its data
    classes package the classes of every event source, about 0.1 s of a cold start for a loop of a few lines."""
    answer = cold_start(template, function_id)

    assert loaded(answer, "aws_lambda_powertools.utilities.batch", "aws_lambda_powertools.utilities.data_classes") == []


# ------------------------------------------------------------------------------------------- collector
@pytest.mark.parametrize("function_id", sorted(project_template().functions))
def test_a_function_loads_without_garbage_collection_and_freezes_what_it_loaded(
    template: Template, function_id: str
) -> None:
    """newsdesk.startup: every collection during the load would traverse everything loaded so far again (over a
    hundred per load without it); what the load made is frozen, so that no later collection traverses it. The
    collector comes back with the first invocation's end (tests/unit/test_startup.py)."""
    answer = cold_start(template, function_id)

    assert answer["collector"]["collections_during_load"] == 0
    assert answer["collector"]["frozen"] > 0
    assert answer["collector"]["enabled"] is False


def test_every_handler_module_turns_the_collector_off_first_and_its_handler_turns_it_on() -> None:
    """Imported after anything else, newsdesk.startup would leave that import to the collector; a handler not
    wrapped by `startup.loaded` (or a module going on after it) would keep the collector off for good."""
    for app in sorted(Path(__file__).resolve().parents[2].glob("functions/*/app.py")):
        body = ast.parse(app.read_text(encoding="utf-8")).body[1:]  # after the docstring
        handler = body[-1]

        assert [ast.unparse(node) for node in body[:2]] == [
            "from __future__ import annotations",
            "from newsdesk import startup",
        ], app
        assert isinstance(handler, ast.FunctionDef), app
        assert handler.name == "lambda_handler", app
        assert ast.unparse(handler.decorator_list[0]) == "startup.loaded", app


# ------------------------------------------------------------------------------------------- pydantic
def test_the_first_model_a_cold_start_builds_looks_up_no_plugins(template: Template) -> None:
    """No pydantic plugin is deployed, and looking for one reads the metadata of every package in the layer
    (PYDANTIC_DISABLE_PLUGINS in the template's Globals)."""
    answered = cold_start(template, "PublicFunction", sample_event("public-index"))
    looked = cold_start(
        template, "PublicFunction", sample_event("public-index"), lambda_variables={"PYDANTIC_DISABLE_PLUGINS": ""}
    )

    assert answered["status"] == looked["status"] == 200
    assert answered["plugins_looked_up"] is False
    assert looked["plugins_looked_up"] is True


# Run like COLD_START: import every module of the product that the layer can load (the CLI needs the
# development extras), then print the product's pydantic models that are built.
EVERY_MODULE = """
import importlib, json, os, pkgutil, sys
sys.path[:0] = os.environ["PYTHONPATH"].split(os.pathsep)
import newsdesk
modules = [info.name for info in pkgutil.walk_packages(newsdesk.__path__, "newsdesk.") if info.name != "newsdesk.cli"]
for name in modules:
    importlib.import_module(name)
from pydantic import BaseModel
classes, pending = set(), [BaseModel]
while pending:
    classes.update(found := set(pending.pop().__subclasses__()) - classes)
    pending.extend(found)
built = [f"{kind.__module__}.{kind.__qualname__}" for kind in classes
         if kind.__module__.startswith("newsdesk") and kind.__pydantic_complete__]
print(json.dumps({"modules": len(modules), "models": len(classes), "built": sorted(built)}))
"""


def test_importing_the_whole_product_builds_no_model(template: Template) -> None:
    """Every model derives from newsdesk.models.base.Model (the settings from their own base), which builds its
    validator on first use: a function imports many more models than its requests use."""
    answer = cold_start(template, "EditorFunction", script=EVERY_MODULE)

    assert answer["modules"] > 100
    assert answer["models"] > 100
    assert answer["built"] == []


def test_modules_defining_models_have_their_annotations_evaluated_as_written() -> None:
    """newsdesk.models.base: with postponed annotations, pydantic evaluates each field's annotation from its
    string as the class is made, half as slow again as reading the annotation itself."""
    shared = Path(__file__).resolve().parents[2] / "shared" / "newsdesk"
    for module in sorted([*shared.glob("models/*.py"), shared / "settings.py"]):
        imports = [
            node for node in ast.parse(module.read_text(encoding="utf-8")).body if isinstance(node, ast.ImportFrom)
        ]

        assert all(node.module != "__future__" for node in imports), module


# --------------------------------------------------------------------------------------------- settings
def test_settings_are_built_when_first_read_and_only_those(template: Template) -> None:
    imported = cold_start(template, "PublicFunction")
    answered = cold_start(template, "PublicFunction", sample_event("public-index"))

    assert imported["settings_built"] == []
    assert answered["status"] == 200
    assert answered["settings_built"] == ["SiteSettings"]  # what the index shows; nothing else was read


# -------------------------------------------------------------------------------------------- SnapStart
# Run as `python -I -S -c SNAPSHOT <module> ""`: the init Lambda takes a snapshot of (the handler's import and
# the before-snapshot hooks, run as the runtime runs them), then two environments resumed from it (forks of
# this process: the same memory, as a restore gives), each running the after-restore hooks.
SNAPSHOT = """
import importlib, json, os, random, sys
sys.path[:0] = os.environ["PYTHONPATH"].split(os.pathsep)
importlib.import_module(sys.argv[1])
import snapshot_restore_py as hooks
from newsdesk import dependencies
for hook, args, kwargs in reversed(hooks.get_before_snapshot()):
    hook(*args, **kwargs)
client = dependencies.container().dynamodb
restored = []
for _ in range(2):
    read, write = os.pipe()
    if os.fork() == 0:
        for hook, args, kwargs in hooks.get_after_restore():
            hook(*args, **kwargs)
        same = dependencies.container().dynamodb is client
        os.write(write, json.dumps({"random": random.random(), "snapshot_client": same}).encode())
        os._exit(0)
    os.close(write)
    os.wait()
    restored.append(json.loads(os.read(read, 4096)))
print(json.dumps({"restored": restored, "modules": sorted(sys.modules),
                  "hooks": [len(hooks.get_before_snapshot()), len(hooks.get_after_restore())]}))
"""
SNAP_START = {"AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"}


def test_environments_resumed_from_one_snapshot_share_no_random_sequence_and_no_client(template: Template) -> None:
    answer = cold_start(template, "MailerFunction", script=SNAPSHOT, lambda_variables=SNAP_START)

    first, second = answer["restored"]
    assert first["random"] != second["random"]  # the send back-off's jitter
    assert [env["snapshot_client"] for env in (first, second)] == [False, False]  # new clients and connections


def test_the_snapshot_of_a_http_function_holds_every_router_it_serves(template: Template) -> None:
    answer = cold_start(template, "EditorFunction", script=SNAPSHOT, lambda_variables=SNAP_START)

    assert set(loaded(answer, *ROUTER_MODULES)) == {routes.module for routes in EDITOR_ROUTES}


def test_without_snapstart_no_hook_is_registered(template: Template) -> None:
    answer = cold_start(template, "EditorFunction", script=SNAPSHOT, lambda_variables={})

    assert answer["hooks"] == [0, 0]
    assert loaded(answer, *ROUTER_MODULES) == []
