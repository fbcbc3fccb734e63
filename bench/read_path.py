"""Public read path at 100 and 10,000 published articles: items DynamoDB examines and median latency.

Both tables live in one dynalite, and the timed requests alternate between them in one loop, so machine
noise hits both sizes alike; only the ratio between the sizes means anything.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import secrets
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from bench.dynalite import Dynalite
from local.aws.embedded import DUMMY_CREDENTIALS, aws_environment, create_tables
from local.lambda_runtime.events import HttpRequest, http_api_event
from local.lambda_runtime.worker import LambdaContext
from local.stack import local_resolver, project_template
from local.template.model import Template
from newsdesk.dal.articles import ArticleRepository
from newsdesk.models.articles import Article, ArticleStatus
from newsdesk.rendering import reading_time_minutes, render_markdown, summarize
from newsdesk.slugs import make_slug

ROOT = Path(__file__).resolve().parent.parent
HANDLER_FILE = ROOT / "functions" / "public" / "app.py"
REGION = "us-east-1"

SIZES = (100, 10_000)
LIMIT = 20
WARMUP = 40  # untimed requests per route and size; they also count the items examined
TIMED = 400  # timed requests per route and size
RATIO_TARGET = 1.2
BATCH = 25  # BatchWriteItem's maximum
SEED_THREADS = 4

TAGS = ("politics", "economy", "science", "health", "technology", "climate", "culture", "sport", "travel", "arts")
AUTHORS = ("Ada Brennan", "Tomás Okafor", "Mei Lindqvist", "Rahul Castellano", "Ingrid Mwangi", "Pavel Duarte")
# The case a filter made unbounded: an author with two articles (the oldest of the "politics" tag, which
# holds 3,000 at 10,000 articles). The pair has a feed of its own, so its page costs what any page costs.
RARE_AUTHOR = "Wendy Seldom"
RARE_ARTICLES = (0, 10)
RARE_TAG = "politics"
_TEXT = (
    "the council said on tuesday that new figures show a sharp rise in demand for local services while "
    "officials warned the budget would remain under pressure through next year residents in several districts "
    "reported delays and the mayor promised a review of spending plans before the summer recess analysts expect "
    "interest rates to stay high as inflation eases slowly across the region researchers at the university "
    "published a study on coastal erosion and the effects of warmer winters on farming communities"
)
_WORDS = _TEXT.split()

_ENVIRONMENT = {
    "ARTICLES_TABLE": "bench-articles",  # unused: a dependency override picks each request's table
    "PUBLICATIONS_TABLE": "bench-publications",
    "TOKENS_TABLE": "bench-tokens",
    "SITE_URL": "https://news.example.com",
    "POWERTOOLS_SERVICE_NAME": "newsdesk",
    "POWERTOOLS_METRICS_NAMESPACE": "Newsdesk",
    "POWERTOOLS_METRICS_DISABLED": "1",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}

Event = dict[str, Any]
Row = dict[str, Any]


# ---------------------------------------------------------------------------------------------- routes
@dataclass(frozen=True)
class Route:
    """One public route: how to build its n-th request, how many items a request may examine, and how
    many items a list must answer (the same at both sizes, or the sizes would not do the same work)."""

    name: str
    examined_target: int
    make_event: Callable[[int, list[str]], Event]
    page_items: int = LIMIT


def _list_event(_n: int, _slugs: list[str]) -> Event:
    return http_api_event(HttpRequest("GET", "/articles", query=f"limit={LIMIT}"), "GET /articles")


def _tag_event(n: int, _slugs: list[str]) -> Event:
    query = f"tag={TAGS[n % len(TAGS)]}&limit={LIMIT}"
    return http_api_event(HttpRequest("GET", "/articles", query=query), "GET /articles")


def _rare_pair_event(_n: int, _slugs: list[str]) -> Event:
    query = f"tag={RARE_TAG}&author={RARE_AUTHOR.replace(' ', '+')}&limit={LIMIT}"
    return http_api_event(HttpRequest("GET", "/articles", query=query), "GET /articles")


def _get_event(n: int, slugs: list[str]) -> Event:
    slug = slugs[n % len(slugs)]
    return http_api_event(HttpRequest("GET", f"/articles/{slug}"), "GET /articles/{slug}", {"slug": slug})


ROUTES = (
    Route(f"GET /articles?limit={LIMIT}", LIMIT + 1, _list_event),
    Route(f"GET /articles?tag=…&limit={LIMIT}", LIMIT + 1, _tag_event),
    Route(
        f"GET /articles?tag=…&author=…&limit={LIMIT} (rare pair)",
        LIMIT + 1,
        _rare_pair_event,
        page_items=len(RARE_ARTICLES),
    ),
    Route("GET /articles/{slug}", 1, _get_event),
)


# ---------------------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class Body:
    """An article body of about 3 KB, rendered once: articles share a few so seeding stays quick."""

    markdown: str
    html: str
    summary: str
    reading_time_minutes: int


def _bodies(rng: random.Random, count: int = 16) -> list[Body]:
    def sentence() -> str:
        return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(9, 18))).capitalize() + "."

    def paragraph() -> str:
        return " ".join(sentence() for _ in range(rng.randint(3, 5)))

    bodies = []
    for _ in range(count):
        bullets = "\n".join(f"- {sentence()}" for _ in range(4))
        link = f"Read the [full report](https://example.com/reports/{rng.randrange(10**6)})."
        markdown = "\n\n".join([paragraph(), paragraph(), f"## {sentence()[:-1]}", paragraph(), bullets, link])
        while len(markdown.encode()) < 3000:
            markdown += "\n\n" + paragraph()
        html = render_markdown(markdown)
        bodies.append(Body(markdown, html, summarize(html), reading_time_minutes(html)))
    return bodies


def _articles(count: int, rng: random.Random, bodies: list[Body]) -> list[Article]:
    """Published articles one minute apart; three tags each, so every tag feed holds a full page at 100."""
    start = datetime(2024, 1, 1, 6, tzinfo=UTC)
    articles = []
    for n in range(count):
        body = bodies[n % len(bodies)]
        title = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(5, 10))).capitalize()
        published = start + timedelta(minutes=n)
        articles.append(
            Article(
                id=secrets.token_hex(8),
                slug=f"{make_slug(title)[:60].rstrip('-')}-{n}",
                title=title,
                body=body.markdown,
                html=body.html,
                author=RARE_AUTHOR if n in RARE_ARTICLES else AUTHORS[n % len(AUTHORS)],
                summary=body.summary,
                tags=[TAGS[n % 10], TAGS[(n + 3) % 10], TAGS[(n + 7) % 10]],
                status=ArticleStatus.PUBLISHED,
                version=2,
                reading_time_minutes=body.reading_time_minutes,
                created_at=published - timedelta(hours=2),
                updated_at=published,
                published_at=published,
            )
        )
    return articles


def _create_table(client: Any, template: Template, size: int) -> str:
    """The template's ArticlesTable (keys and GSIs as declared), named after the size."""
    articles_only = Template(
        data={"Resources": {"ArticlesTable": template.data["Resources"]["ArticlesTable"]}}, root=template.root
    )
    resolver = local_resolver(template=articles_only, region=REGION, prefix=f"bench-{size}")
    name = create_tables(client, articles_only, resolver)["ArticlesTable"]
    client.get_waiter("table_exists").wait(TableName=name)
    return name


def _write_batch(client: Any, table: str, items: list[dict[str, Any]]) -> None:
    requests: dict[str, Any] = {table: [{"PutRequest": {"Item": item}} for item in items]}
    while requests:
        requests = client.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}


def _seed(client: Any, table: str, articles: list[Article]) -> None:
    """Every item a published article needs, written with BatchWriteItem (dynalite has no transactions)."""
    repository = ArticleRepository(client, table)
    items = [item for article in articles for item in repository.stored_items(article)]
    batches = [items[i : i + BATCH] for i in range(0, len(items), BATCH)]
    pool = ThreadPoolExecutor(SEED_THREADS)
    try:
        list(pool.map(lambda batch: _write_batch(client, table, batch), batches))
    finally:
        pool.shutdown(cancel_futures=True)  # on Ctrl-C, drop the batches not yet sent


def _seed_tables(endpoint: str) -> dict[int, tuple[str, list[str]]]:
    """Create and fill one table per size: size -> (table name, its slugs in random order)."""
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(parameter_validation=False, max_pool_connections=SEED_THREADS),
    )
    template = project_template()
    rng = random.Random(20240601)
    bodies = _bodies(rng)
    tables = {}
    for size in SIZES:
        started = time.perf_counter()
        articles = _articles(size, rng, bodies)
        table = _create_table(client, template, size)
        _seed(client, table, articles)
        slugs = [article.slug for article in articles]
        rng.shuffle(slugs)
        tables[size] = (table, slugs)
        _progress(f"seeded {size:,} articles into {table} in {time.perf_counter() - started:.1f} s")
    return tables


# ---------------------------------------------------------------------------------------------- handler
class ReadCounter:
    """botocore after-call hook: items DynamoDB examined (a query's ScannedCount; one per GetItem)."""

    def __init__(self) -> None:
        self.examined = 0

    def __call__(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in ("Query", "Scan"):
            self.examined += int(parsed.get("ScannedCount", 0))
        elif model.name == "GetItem":
            self.examined += 1


class PublicFunction:
    """functions/public/app.py imported by path as Lambda would, with each request sent to a chosen table."""

    def __init__(self, tables: dict[int, str]) -> None:
        # The product's modules read their configuration at import, so they are imported only now.
        from newsdesk import dependencies
        from newsdesk.dal.dynamodb import dynamodb_client
        from newsdesk.services.articles import ArticleService

        dependencies.reset()
        self._dependencies = dependencies
        module = sys.modules.get("public_app") or _import_file("public_app", HANDLER_FILE)
        self.app, self.handler = module.app, module.lambda_handler
        self.client = dynamodb_client()
        self._services = {size: ArticleService(ArticleRepository(self.client, table)) for size, table in tables.items()}
        self.context = LambdaContext("PublicFunction", memory_limit_in_mb=512, region=REGION)

    def use(self, size: int) -> None:
        """Send the next requests to the table of this size."""
        service = self._services[size]
        self.app.dependency_overrides[self._dependencies.article_service] = lambda: service

    def invoke(self, event: Event) -> tuple[float, dict[str, Any]]:
        """Seconds the handler took, and its reply (which must be a 200)."""
        started = time.perf_counter()
        reply = self.handler(event, self.context)
        elapsed = time.perf_counter() - started
        if reply.get("statusCode") != 200:
            raise RuntimeError(f"{event['rawPath']}: {reply.get('statusCode')} {reply.get('body')}")
        return elapsed, reply

    def close(self) -> None:
        self.app.dependency_overrides.pop(self._dependencies.article_service, None)
        self._dependencies.reset()


def _import_file(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _check_full_page(route: Route, reply: dict[str, Any]) -> None:
    """A list must come back with the same page at both sizes (a full one with a next page, or all of a
    rare pair's articles), or the two sizes would not do the same work."""
    body = reply["body"]
    body = json.loads(body) if isinstance(body, str) else body  # the handler may answer a dict body
    if "items" not in body:
        return
    wants_more = route.page_items == LIMIT
    if len(body["items"]) != route.page_items or bool(body.get("next_cursor")) != wants_more:
        raise RuntimeError(
            f"{route.name}: expected {route.page_items} items {'and' if wants_more else 'without'} a cursor, "
            f"got {len(body['items'])} and next_cursor={body.get('next_cursor')!r}"
        )


# ---------------------------------------------------------------------------------------------- measure
def _count_examined(function: PublicFunction, slugs: dict[int, list[str]]) -> dict[tuple[str, int], int]:
    """Warm up with WARMUP requests per route and size; the most items any of them examined."""
    counter = ReadCounter()
    examined: dict[tuple[str, int], int] = {}
    function.client.meta.events.register("after-call.dynamodb", counter)
    try:
        for n in range(WARMUP):
            for route in ROUTES:
                for size in SIZES:
                    function.use(size)
                    counter.examined = 0
                    _, reply = function.invoke(route.make_event(n, slugs[size]))
                    _check_full_page(route, reply)
                    examined[(route.name, size)] = max(examined.get((route.name, size), 0), counter.examined)
    finally:
        function.client.meta.events.unregister("after-call.dynamodb", counter)
    return examined


def _time_requests(function: PublicFunction, slugs: dict[int, list[str]]) -> dict[tuple[str, int], list[float]]:
    """TIMED requests per route and size; the sizes take turns going first, request by request."""
    samples: dict[tuple[str, int], list[float]] = {(route.name, size): [] for route in ROUTES for size in SIZES}
    for n in range(WARMUP, WARMUP + TIMED):
        order = SIZES if n % 2 else SIZES[::-1]
        for route in ROUTES:
            events = {size: route.make_event(n, slugs[size]) for size in SIZES}
            for size in order:
                function.use(size)
                elapsed, _ = function.invoke(events[size])
                samples[(route.name, size)].append(elapsed)
    return samples


def _rows(examined: dict[tuple[str, int], int], samples: dict[tuple[str, int], list[float]]) -> list[Row]:
    small, large = SIZES
    rows = []
    for route in ROUTES:
        median_small = statistics.median(samples[(route.name, small)]) * 1000
        median_large = statistics.median(samples[(route.name, large)]) * 1000
        ratio = median_large / median_small
        examined_small, examined_large = examined[(route.name, small)], examined[(route.name, large)]
        meets = max(examined_small, examined_large) <= route.examined_target and ratio <= RATIO_TARGET
        rows.append(
            {
                "benchmark": "read_path",
                "route": route.name,
                "small_size": small,
                "large_size": large,
                "examined_small": examined_small,
                "examined_large": examined_large,
                "examined_target": route.examined_target,
                "median_ms_small": round(median_small, 3),
                "median_ms_large": round(median_large, 3),
                "ratio": round(ratio, 3),
                "ratio_target": RATIO_TARGET,
                "samples": TIMED,
                "result": "PASS" if meets else "SHORT",
            }
        )
    return rows


def run() -> list[Row]:
    """Seed both sizes into a fresh dynalite, measure every route, and return one row per route."""
    with Dynalite() as dynalite:
        _progress(f"dynalite at {dynalite.endpoint}")
        tables = _seed_tables(dynalite.endpoint)
        slugs = {size: table_slugs for size, (_, table_slugs) in tables.items()}
        with _environment(_ENVIRONMENT | aws_environment(dynalite.endpoint, REGION)), warnings.catch_warnings():
            # Powertools warns on every invocation that records no metric, and the public routes record none.
            warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
            function = PublicFunction({size: table for size, (table, _) in tables.items()})
            try:
                examined = _count_examined(function, slugs)
                _progress(f"timing {TIMED} requests per route and size, the sizes alternating")
                samples = _time_requests(function, slugs)
            finally:
                function.close()
    return _rows(examined, samples)


# ---------------------------------------------------------------------------------------------- report
def _cells(row: Row) -> tuple[str, ...]:
    return (
        row["route"],
        str(row["examined_small"]),
        str(row["examined_large"]),
        f"<= {row['examined_target']}",
        f"{row['median_ms_small']:.2f}",
        f"{row['median_ms_large']:.2f}",
        f"{row['ratio']:.2f}",
        f"<= {row['ratio_target']:.2f}",
        row["result"],
    )


def format_table(rows: list[Row]) -> str:
    """The rows as a fixed-width text table."""
    if not rows:
        return "read path: no rows"
    first = rows[0]
    small, large = f"{first['small_size']:,}", f"{first['large_size']:,}"
    headers: tuple[str, ...] = ("route", f"examined {small}", f"examined {large}", "target")
    headers += (f"median ms {small}", f"median ms {large}", "ratio", "target", "result")
    lines = [_cells(row) for row in rows]
    widths = [max(len(cells[i]) for cells in (headers, *lines)) for i in range(len(headers))]

    def render(cells: tuple[str, ...]) -> str:
        label, *numbers = cells
        aligned = (cell.rjust(width) for cell, width in zip(numbers, widths[1:], strict=True))
        return "  ".join([label.ljust(widths[0]), *aligned])

    title = (
        f"read path: {small} vs {large} published articles in dynalite; "
        f"median of {first['samples']} requests per route and size, the sizes alternating"
    )
    return "\n".join([title, render(headers), "  ".join("-" * width for width in widths), *map(render, lines)])


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


def _progress(message: str) -> None:
    print(f"[read_path] {message}", file=sys.stderr, flush=True)


def main() -> None:
    print(format_table(run()))


if __name__ == "__main__":
    main()
