"""`python -m bench`: run every benchmark module of bench/ (one that defines `run() -> list[dict]`), print each
one's own table as it finishes, then one combined report: benchmark, figure, measured value, target, PASS/SHORT.

`python -m bench --only cold_start,warm_overhead` runs just the named modules. Each module also runs alone
(`python -m bench.read_path`, `python -m bench.cold_start`, ...). A module may define `summary_rows(rows)`
returning the report's lines as dicts with benchmark, figure, value, target and result; for one that does
not, the lines are derived from its rows here. A benchmark that fails is reported as SHORT with its error,
the others still run, and the exit status is then 1.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

Row = dict[str, Any]

ORDER = ("read_path", "fanout", "cold_start", "warm_overhead")
"""The issue's order; any other benchmark module follows, by name."""


def module_names() -> list[str]:
    """Names of this package's modules, in report order (helpers included: they define no `run`)."""
    names = [
        info.name
        for info in pkgutil.iter_modules([str(Path(__file__).resolve().parent)])
        if not info.ispkg and not info.name.startswith("_")
    ]
    return sorted(names, key=lambda name: (ORDER.index(name) if name in ORDER else len(ORDER), name))


def benchmark_modules(only: set[str] | None = None) -> list[ModuleType]:
    """The modules that define `run() -> list[dict]` (only those named in `only`, when given)."""
    found = []
    for name in module_names():
        if only is not None and name not in only:
            continue
        module = importlib.import_module(f"{__package__ or 'bench'}.{name}")
        if callable(getattr(module, "run", None)):
            found.append(module)
    return found


# ---------------------------------------------------------------------------------------------- report
def _read_path_lines(rows: list[Row]) -> list[Row]:
    """read_path's rows hold two figures each: the items a request examines, and the latency ratio."""
    lines = []
    for row in rows:
        small, large = f"{row['small_size']:,}", f"{row['large_size']:,}"
        examined = max(row["examined_small"], row["examined_large"])
        lines.append(
            {
                "benchmark": "read path",
                "figure": f"{row['route']}: items examined per request (at {small} and {large})",
                "value": str(examined),
                "target": f"<= {row['examined_target']}",
                "result": "PASS" if examined <= row["examined_target"] else "SHORT",
            }
        )
        lines.append(
            {
                "benchmark": "read path",
                "figure": f"{row['route']}: median latency {large}/{small}",
                "value": f"{row['ratio']:.2f}",
                "target": f"<= {row['ratio_target']:.2f}",
                "result": "PASS" if row["ratio"] <= row["ratio_target"] else "SHORT",
            }
        )
    return lines


def _generic_lines(name: str, rows: list[Row]) -> list[Row]:
    """Best effort for a module without `summary_rows`: its rows' own figure, value and target fields."""

    def first(row: Row, *keys: str) -> str:
        return next((str(row[key]) for key in keys if row.get(key) is not None), "-")

    return [
        {
            "benchmark": str(row.get("benchmark", name)),
            "figure": first(row, "figure", "route", "function", "name", "mode"),
            "value": first(row, "value", "ratio", "measured"),
            "target": first(row, "target", "ratio_target"),
            "result": first(row, "result"),
        }
        for row in rows
    ]


_ADAPTERS: dict[str, Callable[[list[Row]], list[Row]]] = {"read_path": _read_path_lines}


def report_lines(module: ModuleType, rows: list[Row]) -> list[Row]:
    """The module's lines for the combined report."""
    name = module.__name__.rsplit(".", 1)[-1]
    own = getattr(module, "summary_rows", None)
    if callable(own):
        return list(own(rows))
    if name in _ADAPTERS:
        return _ADAPTERS[name](rows)
    return _generic_lines(name, rows)


def format_report(lines: list[Row], timings: list[tuple[str, float]]) -> str:
    """The combined report: one line per figure, its target beside it, and how long each benchmark took."""
    headers = ("benchmark", "figure", "measured", "target", "result")
    cells = [(line["benchmark"], line["figure"], line["value"], line["target"], line["result"]) for line in lines]
    widths = [max(len(str(row[i])) for row in (headers, *cells)) for i in range(len(headers))]

    def render(row: tuple[str, ...]) -> str:
        return "  ".join(
            str(cell).rjust(width) if i == 2 else str(cell).ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    short = sum(1 for line in lines if line["result"] != "PASS")
    took = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in timings)
    total = sum(seconds for _, seconds in timings)
    return "\n".join(
        [
            "BENCHMARK REPORT (ratios measured side by side in one run; absolute times on a shared machine mislead)",
            render(headers),
            "  ".join("-" * width for width in widths),
            *map(render, cells),
            f"{len(lines) - short} PASS, {short} SHORT. Took: {took}; total {total:.0f} s.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Run the benchmarks; print one report.")
    parser.add_argument("--only", default="", help="comma-separated module names, e.g. cold_start,warm_overhead")
    args = parser.parse_args(argv)
    only = {name.strip() for name in args.only.split(",") if name.strip()} or None
    if only is not None and (unknown := only - set(module_names())):
        have = ", ".join(module.__name__.rsplit(".", 1)[-1] for module in benchmark_modules())
        parser.error(f"no benchmark module {', '.join(sorted(unknown))} (have: {have})")

    lines: list[Row] = []
    timings: list[tuple[str, float]] = []
    failed = False
    for module in benchmark_modules(only):
        name = module.__name__.rsplit(".", 1)[-1]
        started = time.perf_counter()
        try:
            rows = module.run()
        except Exception as exc:
            traceback.print_exc()
            failed = True
            message = f"failed: {type(exc).__name__}: {exc}".splitlines()[0][:100]
            lines.append({"benchmark": name, "figure": message, "value": "-", "target": "-", "result": "SHORT"})
        else:
            print(module.format_table(rows), end="\n\n", flush=True)
            lines += report_lines(module, rows)
        timings.append((name, time.perf_counter() - started))
    print(format_report(lines, timings), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
