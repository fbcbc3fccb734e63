"""The layer built from shared/requirements.txt alone is all the product has to import from, as on Lambda.

Each handler is imported in a clean interpreter (`-I -S`: nothing of the venv) whose path holds only the
function's code, the layer as `sam build` lays it out (shared/ copied, the requirements installed beside it)
and the runtime's boto3, with only the function's environment from the template. A static walk of every
import in the product checks the same for code no import at start reaches.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from local.iam.policies import Credentials
from local.lambda_runtime import layer
from local.lambda_runtime.functions import lambda_environment
from local.stack import local_resolver, project_template
from local.template.model import Function

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "shared" / "requirements.txt"
CLI_MODULES = {"newsdesk.cli", "newsdesk.progress"}
"""The `newsdesk` command's own modules: they need the package's `cli` extra (rich), which the layer lacks."""
CLI_PACKAGES = {"rich"}
IMPORT_TIMEOUT_SECONDS = 120

# Run as `python -I -S -c IMPORT_HANDLER <module> <folder>...`: the folders become the whole import path
# ahead of the standard library, as Lambda's are (/var/task, /opt/python, /var/runtime).
IMPORT_HANDLER = """
import importlib, json, sys
module, *folders = sys.argv[1:]
sys.path[:0] = folders
try:
    importlib.import_module(module)
except ImportError as error:
    print(json.dumps({"missing": error.name, "error": f"{type(error).__name__}: {error}"}))
else:
    print(json.dumps({"missing": None, "modules": sorted(sys.modules)}))
"""


def sam_built_layer(into: Path, *, without: Sequence[str] = ()) -> Path:
    """The layer's `python/` folder as `sam build` makes it: the content of shared/, then the packages of its
    requirements.txt installed into the same folder (linked from the cached build). `without` leaves those
    modules (and their dist-info) out, for a layer that lacks them."""
    python = into / "python"
    shutil.copytree(ROOT / "shared", python, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for entry in layer.packages(REQUIREMENTS).iterdir():
        if not any(entry.name == name or entry.name.startswith(f"{name}-") for name in without):
            (python / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return python


@pytest.fixture(scope="module")
def built_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sam_built_layer(tmp_path_factory.mktemp("sam-build"))


def function_environment(function: Function) -> dict[str, str]:
    """Only the function's environment from the template, as Lambda gives it."""
    return lambda_environment(
        function,
        local_resolver(api_url="https://api.newsdesk.test", template=project_template()),
        Credentials("ASIAEXAMPLEEXAMPLE00", "secret", "token"),
        {},
    )


def import_handler(function: Function, layer_python: Path) -> dict[str, Any]:
    """Import the function's handler module as Lambda's cold start does; what it loaded, or what was missing."""
    environment = function_environment(function)
    folders = [str(function.code_dir), str(layer_python), str(layer.runtime_packages())]
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", IMPORT_HANDLER, function.handler_module, *folders],
        env=environment,
        cwd=function.code_dir,
        capture_output=True,
        text=True,
        timeout=IMPORT_TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, f"{function.logical_id}: the cold start failed:\n{done.stderr[-3000:]}"
    answer: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return answer


def import_failure(function: Function, answer: dict[str, Any]) -> str | None:
    if answer["missing"] is None:
        return None
    return (
        f"{function.logical_id} cannot start on Lambda: {answer['error']}. The layer (shared/requirements.txt) "
        f"lacks the package that provides {answer['missing']!r}"
    )


@pytest.mark.parametrize("logical_id", sorted(project_template().functions))
def test_every_function_imports_its_handler_from_the_layer_alone(built_layer: Path, logical_id: str) -> None:
    function = project_template().functions[logical_id]

    answer = import_handler(function, built_layer)

    failure = import_failure(function, answer)
    assert failure is None, failure
    cli = sorted(name for name in answer["modules"] if name in CLI_MODULES or name.split(".")[0] in CLI_PACKAGES)
    assert not cli, f"{logical_id} loads the CLI's own modules (its extra is not in the layer): {cli}"


# ------------------------------------------------------------------------------------------- bytecode
# Run as `python -I -S -B -c COMPILING <module> <folder>...`: import the handler as Lambda does (which cannot
# write bytecode into /var/task or /opt) and print every source file compiled because no valid bytecode was
# there for it.
COMPILING = """
import importlib, importlib.machinery, json, sys
compiled = []
compile_source = importlib.machinery.SourceFileLoader.source_to_code
def source_to_code(loader, data, path, *args, **kwargs):
    compiled.append(str(path))
    return compile_source(loader, data, path, *args, **kwargs)
importlib.machinery.SourceFileLoader.source_to_code = source_to_code
module, *folders = sys.argv[1:]
sys.path[:0] = folders
importlib.import_module(module)
print(json.dumps({"compiled": compiled, "modules": sorted(sys.modules)}))
"""


def compiled_at_cold_start(function: Function, layer_python: Path) -> list[str]:
    """The layer's source files the function's cold start compiles, its layer dated as Lambda unpacks it."""
    layer.dated_as_zipped(layer_python)
    folders = [str(function.code_dir), str(layer_python), str(layer.runtime_packages())]
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", COMPILING, function.handler_module, *folders],
        env=function_environment(function),
        cwd=function.code_dir,
        capture_output=True,
        text=True,
        timeout=IMPORT_TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.splitlines()[-1])
    assert "pydantic" in answer["modules"]  # the handler's packages were imported: there was much to compile
    assert "aws_lambda_powertools" in answer["modules"]
    return [path for path in answer["compiled"] if Path(path).is_relative_to(layer_python)]


@pytest.mark.parametrize("logical_id", ["PublicFunction", "MailerFunction"])
def test_a_cold_start_compiles_nothing_of_the_layer_make_deploy_ships(tmp_path: Path, logical_id: str) -> None:
    python = sam_built_layer(tmp_path)
    layer.as_deployed(python)  # what `make deploy`'s bytecode step leaves of `sam build`'s layer

    assert compiled_at_cold_start(project_template().functions[logical_id], python) == []


def test_without_the_bytecode_step_a_cold_start_compiles_the_product_again(tmp_path: Path) -> None:
    python = sam_built_layer(tmp_path)  # sam build alone: the product's sources, no bytecode

    compiled = compiled_at_cold_start(project_template().functions["PublicFunction"], python)

    assert any(Path(path).is_relative_to(python / "newsdesk") for path in compiled)


# ------------------------------------------------------------------------------------------ static walk
def _type_checking_only(tree: ast.AST) -> set[ast.AST]:
    """Import statements under `if TYPE_CHECKING:`, which never run."""
    skipped: set[ast.AST] = set()
    for node in ast.walk(tree):
        test = getattr(node, "test", None)
        if isinstance(node, ast.If) and ast.unparse(test if test is not None else node).endswith("TYPE_CHECKING"):
            skipped.update(child for statement in node.body for child in ast.walk(statement))
    return skipped


def product_imports() -> Iterator[tuple[Path, int, str]]:
    """(file, line, module) for every import the product can run: shared/newsdesk and functions/, imports
    inside functions included; not the CLI's own modules."""
    sources = [*(ROOT / "shared" / "newsdesk").rglob("*.py"), *(ROOT / "functions").rglob("*.py")]
    for source in sorted(sources):
        if source.is_relative_to(ROOT / "shared"):
            module = ".".join(source.relative_to(ROOT / "shared").with_suffix("").parts)
            if module in CLI_MODULES:
                continue
        tree = ast.parse(source.read_text(encoding="utf-8"), str(source))
        skipped = _type_checking_only(tree)
        for node in ast.walk(tree):
            if node in skipped:
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield source, node.lineno, alias.name
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield source, node.lineno, node.module
                for alias in node.names:  # `from newsdesk import cli` imports a module too
                    yield source, node.lineno, f"{node.module}.{alias.name}"


def unavailable_imports(layer_python: Path) -> dict[str, list[str]]:
    """Each top-level module the product imports that neither the standard library, the layer, the runtime
    nor the importing function's own folder has, with where it is imported."""
    missing: dict[str, list[str]] = {}
    for source, line, module in product_imports():
        top = module.split(".")[0]
        if top in sys.stdlib_module_names:
            continue
        folders = [layer_python, layer.runtime_packages()]
        if source.is_relative_to(ROOT / "functions"):
            folders.insert(0, source.parent)  # a handler's sibling modules
        if importlib.machinery.PathFinder.find_spec(top, [str(folder) for folder in folders]) is None:
            places = missing.setdefault(top, [])
            if f"{source.relative_to(ROOT)}:{line}" not in places:
                places.append(f"{source.relative_to(ROOT)}:{line}")
    return missing


def cli_imports() -> list[str]:
    return [
        f"{source.relative_to(ROOT)}:{line} imports {module}"
        for source, line, module in product_imports()
        if module in CLI_MODULES or module.split(".")[0] in CLI_PACKAGES
    ]


def test_every_package_the_product_imports_is_in_the_layer(built_layer: Path) -> None:
    missing = unavailable_imports(built_layer)
    assert not missing, f"the product imports packages the layer (shared/requirements.txt) lacks: {missing}"
    assert not cli_imports(), "the product imports the CLI, whose extra the layer lacks"


# ------------------------------------------------------------------------- the checks fail when they must
@pytest.fixture(scope="module")
def layer_without_pydantic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sam_built_layer(tmp_path_factory.mktemp("incomplete"), without=["pydantic"])


def test_a_handler_whose_package_is_missing_fails_naming_it(layer_without_pydantic: Path) -> None:
    function = project_template().functions["PublicFunction"]
    failure = import_failure(function, import_handler(function, layer_without_pydantic))
    assert failure is not None
    assert "PublicFunction cannot start on Lambda: ModuleNotFoundError: No module named 'pydantic'" in failure


def test_the_static_walk_names_a_package_the_layer_lacks(layer_without_pydantic: Path) -> None:
    missing = unavailable_imports(layer_without_pydantic)
    assert list(missing) == ["pydantic"]
    assert "shared/newsdesk/settings.py:" in " ".join(missing["pydantic"])


# -------------------------------------------------------------------------------- the test process itself
def test_the_tests_import_the_products_packages_from_the_layer(product_path: layer.ProductPath) -> None:
    """In-process handlers share this process with pytest and moto, so the venv stays on the path, behind
    the layer: every package the product imports resolves to the layer's copy, or was imported by pytest's
    plugins before the layer was on the path and is the layer's version (tests/conftest.py checks that)."""
    elsewhere = {}
    for top in sorted({module.split(".")[0] for _source, _line, module in product_imports()}):
        if top in sys.stdlib_module_names or top in product_path.imported_before:
            continue
        origin = Path(importlib.import_module(top).__file__ or "")
        if not any(origin.is_relative_to(folder) for folder in product_path.folders):
            elsewhere[top] = str(origin)
    assert not elsewhere, f"the product's packages come from outside the layer: {elsewhere}"


# ------------------------------------------------------------------------------------------- the builder
ASK_FOR_PACKAGES = "import sys; from pathlib import Path; from local.lambda_runtime import layer; " + (
    "print(layer.packages(Path(sys.argv[1]), root=Path(sys.argv[2])))"
)


def test_processes_asking_at_once_share_one_build_and_a_changed_file_gets_its_own(tmp_path: Path) -> None:
    requirements = tmp_path / "shared" / "requirements.txt"
    requirements.parent.mkdir()
    requirements.write_text("# no packages: pip runs all the same\n")
    cache = tmp_path / "cache"
    ask = [sys.executable, "-c", ASK_FOR_PACKAGES, str(requirements), str(cache)]

    runs = [
        subprocess.Popen(ask, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)
    ]
    answers = [run.communicate(timeout=IMPORT_TIMEOUT_SECONDS) for run in runs]

    assert [run.returncode for run in runs] == [0, 0, 0], answers
    (built,) = {out.strip() for out, _err in answers}
    assert sum(err.count("layer: installing") for _out, err in answers) == 1
    assert [path.name for path in cache.iterdir() if path.is_dir()] == [Path(built).name]  # nothing half-built
    requirements.write_text("# another file, another build\n")
    assert layer.packages(requirements, root=cache) != Path(built)
