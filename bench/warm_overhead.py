"""Warm overhead of `GET /articles/{slug}`: the PublicFunction handler against the bare GetItem it makes.

In this process, against dynalite (bench/dynalite.py, a node process of its own): functions/public/app.py is
imported as Lambda would import it, with the function's environment from template.yaml, and serves the
sample event events/public-get-article.json. Its first request records the one DynamoDB call it makes; the
bare call is that GetItem, with the same parameters, on the very client the handler uses (same config,
same connection pool). After WARMUP untimed requests of each, TIMED of each are timed, the two taking turns
(the order flipping every pair), so noise hits both alike. The figure is the ratio of the medians, target
<= 1.5. `python -m bench.warm_overhead --profile` also prints where the handler's time goes (cProfile).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.dynalite import Dynalite
from local.aws.embedded import aws_environment, client, create_tables
from local.lambda_runtime.functions import InProcessFunctions
from local.lambda_runtime.worker import LambdaContext
from local.stack import local_resolver
from local.template.model import Template

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
FUNCTION = "PublicFunction"
SAMPLE = "public-get-article.json"
WARMUP = 100
TIMED = 600
RATIO_TARGET = 1.5
API_URL = "https://api.newsdesk.test"
BODY_BYTES = 3000  # about the size of a news article's Markdown
PROFILED = 300

Row = dict[str, Any]
Call = tuple[str, dict[str, Any]]


# ---------------------------------------------------------------------------------------------- setup
def _article(slug: str) -> Any:
    """A published article of about BODY_BYTES of Markdown (examples/ repeated), under `slug`."""
    from newsdesk.models.articles import Article, ArticleStatus
    from newsdesk.rendering import reading_time_minutes, render_markdown, summarize

    example = (ROOT / "examples" / "council-approves-budget.md").read_text(encoding="utf-8").split("---", 2)[2]
    body = example.strip()
    while len(body.encode()) < BODY_BYTES:
        body += "\n\n" + example.strip()
    html = render_markdown(body)
    published = datetime(2026, 11, 28, 9, tzinfo=UTC)
    return Article(
        id="0123456789abcdef",
        slug=slug,
        title="Council approves the 2027 budget",
        body=body,
        html=html,
        author="Ada Brennan",
        summary=summarize(html),
        tags=["council", "budget", "city-hall"],
        status=ArticleStatus.PUBLISHED,
        version=2,
        reading_time_minutes=reading_time_minutes(html),
        created_at=published - timedelta(hours=2),
        updated_at=published,
        published_at=published,
    )


class Setup:
    """The template's tables in dynalite, the sample's article in them, and the handler imported."""

    def __init__(self, endpoint: str) -> None:
        from newsdesk import dependencies
        from newsdesk.dal.articles import ArticleRepository

        resolver = local_resolver(api_url=API_URL, region=REGION, prefix="warm")
        template = resolver.template
        admin = client("dynamodb", endpoint, REGION)
        # Only the table the route reads (dynalite has no UpdateTimeToLive, which others' creation needs).
        articles_only = Template(data={"Resources": {"ArticlesTable": template.data["Resources"]["ArticlesTable"]}},
                                 root=template.root)  # fmt: skip
        create_tables(admin, articles_only, local_resolver(template=articles_only, region=REGION, prefix="warm"))
        self.event: dict[str, Any] = json.loads((ROOT / "events" / SAMPLE).read_text(encoding="utf-8"))
        table = resolver.physical_name("ArticlesTable")
        for item in ArticleRepository(admin, table).stored_items(_article(self.event["pathParameters"]["slug"])):
            admin.put_item(TableName=table, Item=item)
        dependencies.reset()  # the settings and clients are read again from this environment
        self.handler: Callable[[dict[str, Any], Any], dict[str, Any]] = (
            InProcessFunctions(template, resolver).module(FUNCTION).lambda_handler
        )
        function = template.functions[FUNCTION]
        self.context = LambdaContext(
            resolver.physical_name(FUNCTION), memory_limit_in_mb=function.memory_size, timeout_seconds=3600
        )
        self.client = dependencies.container().dynamodb  # the client the handler's repository uses

    def request(self) -> dict[str, Any]:
        reply = self.handler(self.event, self.context)
        if reply.get("statusCode") != 200:
            raise RuntimeError(f"{SAMPLE}: {reply.get('statusCode')} {reply.get('body')}")
        return reply

    def first_call(self) -> Call:
        """Serve one request, recording the AWS calls it makes; it must make exactly one."""
        calls: list[Call] = []

        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            calls.append((model.name, dict(params)))

        self.client.meta.events.register("provide-client-params.dynamodb", record)
        try:
            self.request()
        finally:
            self.client.meta.events.unregister("provide-client-params.dynamodb", record)
        if [name for name, _ in calls] != ["GetItem"]:
            raise RuntimeError(f"expected one GetItem per request, the handler made {[n for n, _ in calls]}")
        return calls[0]


def _environment_for(endpoint: str) -> dict[str, str]:
    resolver = local_resolver(api_url=API_URL, region=REGION, prefix="warm")
    return (
        resolver.function_environment(resolver.template.functions[FUNCTION])
        | aws_environment(endpoint, REGION)
        | {"POWERTOOLS_TRACE_DISABLED": "1"}  # no X-Ray daemon here
    )


# ---------------------------------------------------------------------------------------------- measure
def _timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def measure(setup: Setup, timed: int = TIMED) -> Row:
    _, params = setup.first_call()

    def bare() -> None:
        if "Item" not in setup.client.get_item(**params):
            raise RuntimeError(f"the bare GetItem found nothing: {params}")

    for _ in range(WARMUP):
        setup.request()
        bare()
    samples: dict[str, list[float]] = {"handler": [], "bare": []}
    for n in range(timed):
        for kind in ("handler", "bare") if n % 2 else ("bare", "handler"):
            samples[kind].append(_timed(setup.request if kind == "handler" else bare))
    handler_ms = statistics.median(samples["handler"]) * 1000
    bare_ms = statistics.median(samples["bare"]) * 1000
    ratio = handler_ms / bare_ms
    return {
        "benchmark": "warm_overhead",
        "route": "GET /articles/{slug}",
        "backend": "dynalite",
        "handler_ms": round(handler_ms, 3),
        "bare_ms": round(bare_ms, 3),
        "handler_p90_ms": round(_quantile(samples["handler"], 0.9) * 1000, 3),
        "bare_p90_ms": round(_quantile(samples["bare"], 0.9) * 1000, 3),
        "ratio": round(ratio, 3),
        "target": RATIO_TARGET,
        "samples": timed,
        "result": "PASS" if ratio <= RATIO_TARGET else "SHORT",
    }


def profile(setup: Setup, requests: int = PROFILED, top: int = 30) -> str:
    """cProfile of `requests` warm requests through the handler: the functions with most cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        setup.request()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run(timed: int = TIMED, with_profile: bool = False) -> list[Row]:
    """One row: the handler's and the bare GetItem's medians, and their ratio."""
    with Dynalite() as dynalite:
        _progress(f"dynalite at {dynalite.endpoint}")
        with _environment(_environment_for(dynalite.endpoint)), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
            setup = Setup(dynalite.endpoint)
            row = measure(setup, timed)
            if with_profile:
                print(profile(setup), file=sys.stderr)
    return [row]


# ---------------------------------------------------------------------------------------------- report
def summary_rows(rows: list[Row]) -> list[Row]:
    """The figure for the combined report."""
    return [
        {
            "benchmark": "warm overhead",
            "figure": f"{row['route']} handler/bare GetItem (medians of {row['samples']}, {row['backend']})",
            "value": f"{row['ratio']:.2f}",
            "target": f"<= {row['target']:.2f}",
            "result": row["result"],
        }
        for row in rows
    ]


def format_table(rows: list[Row]) -> str:
    """The rows as a fixed-width text table."""
    if not rows:
        return "warm overhead: no rows"
    headers = ("route", "handler ms", "bare GetItem ms", "handler p90", "bare p90", "ratio", "target", "result")
    lines = [
        (
            row["route"],
            f"{row['handler_ms']:.3f}",
            f"{row['bare_ms']:.3f}",
            f"{row['handler_p90_ms']:.3f}",
            f"{row['bare_p90_ms']:.3f}",
            f"{row['ratio']:.2f}",
            f"<= {row['target']:.2f}",
            row["result"],
        )
        for row in rows
    ]
    widths = [max(len(cells[i]) for cells in (headers, *lines)) for i in range(len(headers))]

    def render(cells: tuple[str, ...]) -> str:
        label, *numbers = cells
        aligned = (cell.rjust(width) for cell, width in zip(numbers, widths[1:], strict=True))
        return "  ".join([label.ljust(widths[0]), *aligned])

    first = rows[0]
    title = (
        f"warm overhead: {FUNCTION}'s handler in this process vs the bare GetItem it makes (same client, same key), "
        f"against {first['backend']}; median of {first['samples']} each after {WARMUP} warm-up, alternating"
    )
    return "\n".join([title, render(headers), "  ".join("-" * width for width in widths), *map(render, lines)])


def _progress(message: str) -> None:
    print(f"[warm_overhead] {message}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.warm_overhead", description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=TIMED, help=f"timed requests of each (default {TIMED})")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of warm handler requests")
    args = parser.parse_args()
    print(format_table(run(args.samples, args.profile)))


if __name__ == "__main__":
    main()
