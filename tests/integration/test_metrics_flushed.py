"""Every function whose code can add a CloudWatch metric publishes it: its handler has @metrics.log_metrics.

Powertools keeps added metrics in memory until `log_metrics` writes them out (EMF, on stdout) as the
invocation ends; without it they are never published. Which functions add metrics is found by reading
the code: from each handler of the template, through the imports of the function's folder and the
layer (lazy imports inside functions too, name by name, and the routers api/routing.py declares), to a call
of `add_metric`. Reading cannot tell
a route that runs from one only imported (PublicFunction's OpenAPI document imports the editor's routes),
so it may ask for the decorator where it flushes nothing; that costs nothing.
"""

from __future__ import annotations

import ast
import json
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

from local.template.model import Function, Template, load_yaml
from tests.integration.conftest import Stack
from tests.integration.test_schedules import T, run_job, scheduled_article
from tests.integration.test_uploads import article_file, upload

WHOLE = "*"  # a module imported as a whole: its import-time code and every definition
IMPORT_TIME = ""  # only what runs when a module is imported

Part = tuple[str, str]  # (module, WHOLE | IMPORT_TIME | "name" | "Class.method")


@dataclass
class _Module:
    path: Path
    on_import: list[ast.stmt]  # what runs at import: not definitions, not imports for the type checker
    definitions: dict[str, ast.stmt]  # top-level functions and classes
    methods: dict[str, dict[str, ast.stmt]]  # class -> method -> definition

    @classmethod
    def parse(cls, path: Path) -> _Module:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        module = cls(path, [], {}, {})
        for statement in tree.body:
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                module.definitions[statement.name] = statement
            elif not _type_checking_only(statement):
                module.on_import.append(statement)
            if isinstance(statement, ast.ClassDef):
                module.methods[statement.name] = {
                    node.name: node
                    for node in statement.body
                    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                }
        return module

    def nodes(self, part: str) -> list[ast.AST]:
        """The code of one part; a class without its methods (they are reached one by one, when used)."""
        found: list[ast.AST] = list(self.on_import) if part in (WHOLE, IMPORT_TIME) else []
        names = list(self.definitions) if part == WHOLE else [] if part == IMPORT_TIME else [part]
        for name in names:
            class_name, _, method = name.partition(".")
            definition = self.definitions.get(class_name)
            if method:
                found += [self.methods[class_name][method]] if method in self.methods.get(class_name, {}) else []
            elif isinstance(definition, ast.ClassDef):
                found += [*definition.bases, *definition.keywords, *definition.decorator_list]
                found += [node for node in definition.body if node not in self.methods[class_name].values()]
            elif definition is not None:
                found.append(definition)
        return found


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """ast.walk, except imports made for the type checker only (they never run)."""
    yield node
    for child in ast.iter_child_nodes(node):
        if not _type_checking_only(child):
            yield from _walk(child)


@dataclass
class CodeReader:
    """Follows a function's code from its handler module to every `add_metric` call it can reach.

    Functions and classes are followed by name; a class's method is followed once some reached code
    uses an attribute of that name (on any object: without types, every `.publish` may be this one).
    """

    roots: tuple[Path, ...]  # the function's folder, then the layers' folders: Lambda's import path
    _modules: dict[str, _Module | None] = field(default_factory=dict)

    def metric_calls(self, module_name: str) -> list[str]:
        """Where the code reachable from `module_name` adds a metric ("folder/file.py:line")."""
        calls: set[str] = set()
        attributes: set[str] = set()
        classes: set[tuple[str, str]] = set()
        seen: set[Part] = set()
        pending: list[Part] = [(module_name, WHOLE)]
        while pending:
            while pending:
                part = pending.pop()
                if part not in seen:
                    seen.add(part)
                    pending += self._follow(part, calls, attributes, classes)
            pending = [
                (module, f"{class_name}.{method}")
                for module, class_name in classes
                for method in self._methods(module, class_name)
                if (method in attributes or method.startswith("__")) and (module, f"{class_name}.{method}") not in seen
            ]
        return sorted(calls)

    def _module(self, name: str) -> _Module | None:
        if name not in self._modules:
            bases = [root.joinpath(*name.split(".")) for root in self.roots]
            paths = [path for b in bases for path in (b.with_suffix(".py"), b / "__init__.py") if path.is_file()]
            self._modules[name] = _Module.parse(paths[0]) if paths else None
        return self._modules[name]

    def _methods(self, module_name: str, class_name: str) -> list[str]:
        module = self._module(module_name)
        return list(module.methods.get(class_name, {})) if module else []

    def _follow(self, part: Part, calls: set[str], attributes: set[str], classes: set[tuple[str, str]]) -> list[Part]:
        module_name, name = part
        module = self._module(module_name)
        if module is None:  # a library: not the project's code
            return []
        if name in module.methods:
            classes.add((module_name, name))
        if name == WHOLE:
            classes.update((module_name, class_name) for class_name in module.methods)
        found: list[Part] = []
        for node in (child for top in module.nodes(name) for child in _walk(top)):
            if isinstance(node, ast.Attribute):
                attributes.add(node.attr)
            if isinstance(node, ast.Call):
                called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if called == "add_metric":
                    calls.add(f"{module.path.parent.name}/{module.path.name}:{node.lineno}")
                found += [(router_module, WHOLE) for router_module in _declared_router(node)]
            elif isinstance(node, ast.Name) and node.id in module.definitions:
                found.append((module_name, node.id))
            elif isinstance(node, ast.Import):
                found += [(alias.name, WHOLE) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                package = _absolute(module_name, module.path, node)
                found.append((package, IMPORT_TIME))
                for alias in node.names:
                    submodule = f"{package}.{alias.name}"
                    found.append((submodule, WHOLE) if self._module(submodule) else (package, alias.name))
        return found


def _declared_router(call: ast.Call) -> list[str]:
    """The module of a router an HTTP function declares (api/routing.py: `Routes("newsdesk.api.editor",
    "router", paths)`), which the function imports when a request first asks for one of its paths."""
    name = call.func.id if isinstance(call.func, ast.Name) else ""
    first = call.args[0] if call.args else None
    if name == "Routes" and isinstance(first, ast.Constant) and isinstance(first.value, str):
        return [first.value]
    return []


def _absolute(module_name: str, path: Path, node: ast.ImportFrom) -> str:
    """The module a `from ... import` names, relative imports resolved."""
    if not node.level:
        return node.module or ""
    package = module_name.split(".") if path.name == "__init__.py" else module_name.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def metric_calls(template: Template, function: Function) -> list[str]:
    return CodeReader((function.code_dir, *template.layer_dirs)).metric_calls(function.handler_module)


def _decorator_name(decorator: ast.expr) -> str:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")


def flushes_metrics(function: Function) -> bool:
    """Whether the handler is decorated with Powertools' `log_metrics` (bare or called)."""
    tree = ast.parse(function.module_file.read_text(encoding="utf-8"))
    handlers = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function.handler_function
    ]
    return any(_decorator_name(decorator) == "log_metrics" for node in handlers for decorator in node.decorator_list)


def unpublished_metrics(template: Template) -> list[str]:
    """Functions whose code adds metrics while their handler never flushes them."""
    problems = []
    for function in template.functions.values():
        calls = metric_calls(template, function)
        if calls and not flushes_metrics(function):
            problems.append(
                f"{function.logical_id}: adds metrics ({', '.join(calls)}) but {function.handler} has no "
                "@metrics.log_metrics, so they are never published"
            )
    return problems


def test_every_function_that_adds_metrics_publishes_them(template: Template) -> None:
    assert unpublished_metrics(template) == []


def test_the_check_follows_each_function_to_its_metrics(template: Template) -> None:
    # Guards against a check that passes by finding nothing: these three create and publish articles
    # (the editor's routes, scheduled publishing, uploaded Markdown); the authorizer only reads tokens.
    adding = {logical_id for logical_id, f in template.functions.items() if metric_calls(template, f)}

    assert {"EditorFunction", "SchedulerFunction", "UploadFunction"} <= adding
    assert "AuthorizerFunction" not in adding


# ------------------------------------------------------------------------ the check catches breakage


def worker_template(root: Path, *, decorator: str) -> Template:
    """A function whose handler reaches `add_metric` only through a layer module's lazy import."""
    files = {
        "functions/worker/app.py": f"""
            from shop.factories import order_service
            from shop.observability import metrics


            {decorator}
            def lambda_handler(event, context):
                return order_service().place(event)
            """,
        "shared/shop/__init__.py": "",
        "shared/shop/observability.py": """
            from aws_lambda_powertools import Metrics

            metrics = Metrics()
            """,
        "shared/shop/factories.py": """
            def order_service():
                from shop.orders import OrderService

                return OrderService()


            def unrelated():
                return None
            """,
        "shared/shop/orders.py": """
            from shop.observability import metrics


            class OrderService:
                def place(self, order):
                    metrics.add_metric(name="OrdersPlaced", unit="Count", value=1)
                    return order
            """,
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text), encoding="utf-8")
    data = load_yaml(
        textwrap.dedent("""
            Resources:
              Shared:
                Type: AWS::Serverless::LayerVersion
                Properties: {ContentUri: shared/}
              Worker:
                Type: AWS::Serverless::Function
                Properties: {CodeUri: functions/worker/, Handler: app.lambda_handler, Runtime: python3.13}
            """)
    )
    return Template(data=data, root=root)


@pytest.mark.parametrize("decorator", ["", "@tracer.capture_lambda_handler"])
def test_the_check_catches_a_handler_that_never_publishes(tmp_path: Path, decorator: str) -> None:
    problems = unpublished_metrics(worker_template(tmp_path, decorator=decorator))

    assert len(problems) == 1
    assert problems[0].startswith("Worker: adds metrics (shop/orders.py:7)"), problems


@pytest.mark.parametrize("decorator", ["@metrics.log_metrics", "@metrics.log_metrics(capture_cold_start_metric=True)"])
def test_the_check_passes_a_handler_that_publishes(tmp_path: Path, decorator: str) -> None:
    assert unpublished_metrics(worker_template(tmp_path, decorator=decorator)) == []


# ------------------------------------------------------------------------ what an operator sees


def published_metrics(output: str) -> set[str]:
    """Names of the metrics in the EMF documents a function printed (what CloudWatch turns into metrics)."""
    names: set[str] = set()
    for line in output.splitlines():
        try:
            document: Any = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and "_aws" in document:
            for directive in document["_aws"]["CloudWatchMetrics"]:
                names.update(metric["Name"] for metric in directive["Metrics"])
    return names


def test_an_article_published_on_schedule_is_counted(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    scheduled_article(stack)
    capsys.readouterr()

    with freeze_time(T + timedelta(seconds=1)):
        report = run_job(stack)

    assert len(report["published"]) == 1
    assert "ArticlesPublished" in published_metrics(capsys.readouterr().out)


def test_an_uploaded_article_is_counted(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()

    upload(stack, "articles/harbour.md", article_file("Harbour reopens"))

    assert {"ArticlesCreated", "ArticlesPublished"} <= published_metrics(capsys.readouterr().out)
