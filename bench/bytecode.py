"""A handler's cold import with the layer as `make deploy` ships it against the layer `sam build` alone ships.

On Lambda nothing can write bytecode (/opt and /var/task are read-only), and SAM's zips date every file
1980-01-01, which no bytecode checked by date matches (aws/aws-lambda-builders#924): with `sam build` alone,
every module of the layer is compiled again at every cold start. `make deploy` adds hash-checked bytecode
(the Makefile's `bytecode` step; `layer.as_deployed` here), which stays valid whatever the date.

Both layers are laid out as `sam build` makes them (shared/ copied, the requirements' packages beside it),
every file dated 1980-01-01: "sam build alone" holds no bytecode, "make deploy" the hash-checked kind. Each
run is a fresh `python -I -S -B` (bytecode never written, as on Lambda) with the function's environment,
importing its handler module from its code, one of the layers and the runtime's boto3, timed inside the
child. Runs alternate, the order flipping each pair; the figure is the median of per-pair ratios
deployed/alone. Only the import is timed: the first invocation's own imports would add to "alone".
`python -m bench.bytecode [--pairs N]` runs it alone.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from local.iam.policies import Credentials
from local.lambda_runtime import layer
from local.lambda_runtime.functions import lambda_environment
from local.stack import local_resolver, project_template
from local.template.model import Function

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ("AuthorizerFunction", "PublicFunction", "EditorFunction", "MailerFunction")
PAIRS = 10
RATIO_TARGET = 0.75
"""The deployed layer's import takes at most three quarters of the time the layer without bytecode does."""

IMPORT = """
import importlib, json, sys, time
module, *folders = sys.argv[1:]
sys.path[:0] = folders
started = time.perf_counter()
importlib.import_module(module)
print(json.dumps({"import_ms": (time.perf_counter() - started) * 1000}))
"""


def build_layers(into: Path) -> dict[str, Path]:
    """The layer's `python/` folder twice: as `sam build` alone leaves it, and after `make deploy`'s bytecode."""
    layers = {}
    for kind in ("alone", "deployed"):
        python = into / kind / "python"
        skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
        shutil.copytree(ROOT / "shared", python, ignore=skip)
        shutil.copytree(layer.packages(ROOT / "shared" / "requirements.txt"), python, dirs_exist_ok=True, ignore=skip)
        if kind == "deployed":
            layer.as_deployed(python)
        else:
            layer.dated_as_zipped(python)
        layers[kind] = python
    return layers


def cold_import(function: Function, python: Path, environment: dict[str, str]) -> float:
    folders = [str(function.code_dir), str(python), str(layer.runtime_packages())]
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", IMPORT, function.handler_module, *folders],
        env=environment,
        cwd=function.code_dir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{function.logical_id}: the cold import failed:\n{done.stderr[-3000:]}")
    return float(json.loads(done.stdout.splitlines()[-1])["import_ms"])


def run(pairs: int = PAIRS) -> list[dict[str, Any]]:
    template = project_template()
    resolver = local_resolver(api_url="https://api.newsdesk.test", template=template)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bytecode-bench-") as scratch:
        layers = build_layers(Path(scratch))
        for function_id in FUNCTIONS:
            function = template.functions[function_id]
            environment = lambda_environment(function, resolver, Credentials("ASIAEXAMPLE", "secret", "token"), {})
            cold_import(function, layers["deployed"], environment)  # warm the disk cache for both
            cold_import(function, layers["alone"], environment)
            times: dict[str, list[float]] = {"alone": [], "deployed": []}
            for n in range(pairs):
                for kind in ("alone", "deployed") if n % 2 else ("deployed", "alone"):
                    times[kind].append(cold_import(function, layers[kind], environment))
            ratio = statistics.median(d / a for d, a in zip(times["deployed"], times["alone"], strict=True))
            rows.append(
                {
                    "benchmark": "bytecode",
                    "function": function_id,
                    "alone_ms": round(statistics.median(times["alone"]), 1),
                    "deployed_ms": round(statistics.median(times["deployed"]), 1),
                    "ratio": round(ratio, 3),
                    "pairs": pairs,
                    "target": RATIO_TARGET,
                    "result": "PASS" if ratio <= RATIO_TARGET else "SHORT",
                }
            )
    return rows


def summary_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "benchmark": "bytecode",
            "figure": f"{row['function']} import, make deploy's layer / sam build's alone (median of {row['pairs']})",
            "value": f"{row['ratio']:.2f}",
            "target": f"<= {row['target']:.2f}",
            "result": row["result"],
        }
        for row in rows
    ]


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "bytecode: a handler's cold import (python -I -S -B, layer files dated 1980-01-01 as SAM's zip leaves them), "
        "the layer as `sam build` alone ships it (no bytecode) vs as `make deploy` ships it (hash-checked bytecode)",
        f"{'function':<20}{'alone ms':>10}{'deployed ms':>13}{'deployed/alone':>16}",
    ]
    lines += [
        f"{row['function']:<20}{row['alone_ms']:>10.0f}{row['deployed_ms']:>13.0f}{row['ratio']:>16.2f}" for row in rows
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bytecode", description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=PAIRS, help=f"pairs of runs per function (default {PAIRS})")
    print(format_table(run(parser.parse_args().pairs)))


if __name__ == "__main__":
    main()
