"""The local stack stays flat as a newsroom uses it: memory and publish-to-done time at 20 and 150 articles.

`python -m bench.local_stack` starts `python -m local` (workers, IAM enforcement and all), then creates and
publishes articles one after another with no subscribers, as a newsroom's first days go. At 20 and at 150
articles it takes the resident memory of the whole stack (the runner and every worker process) and the
median time from a publish request to its delivery reaching `done`, over the last 10 publishes. Between the
two it publishes one article from 10 threads at once, so that DynamoDB cancels the losing transactions, and
the publications after that must still be delivered. Ratios 150/20 are the figures (target <= 1.5).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from local.stack_process import LocalStack, local_stack_process

Row = dict[str, Any]

SMALL, LARGE = 20, 150
MEASURED_PUBLISHES = 10
CONCURRENT_PUBLISHES = 10
TARGET = 1.5
DONE_TIMEOUT_SECONDS = 120.0


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def stack_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB (from /proc)."""
    total_kb, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        total_kb += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        pending += _children(current)
    return total_kb / 1024


def _article(stack: LocalStack, number: int) -> str:
    body = {"title": f"Dispatch {number}", "author": "Ada", "body": f"News item {number}.\n\nMore soon."}
    reply = stack.request("POST", "/admin/articles", json_body=body, editor=True)
    assert reply.status == 201, reply.body
    return str(reply.json()["id"])


def _wait_done(stack: LocalStack, article_id: str) -> None:
    deadline = time.monotonic() + DONE_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        reply = stack.request("GET", f"/admin/articles/{article_id}/delivery", editor=True)
        if reply.status == 200 and reply.json()["state"] == "done":
            return
        time.sleep(0.05)
    raise TimeoutError(f"the delivery of {article_id} was not done after {DONE_TIMEOUT_SECONDS:.0f}s")


def publish_to_done(stack: LocalStack, number: int) -> float:
    """Seconds from the publish request of a new article to its delivery being done."""
    article_id = _article(stack, number)
    started = time.perf_counter()
    assert stack.request("POST", f"/admin/articles/{article_id}/publish", editor=True).status == 200
    _wait_done(stack, article_id)
    return time.perf_counter() - started


def publish_concurrently(stack: LocalStack, number: int) -> None:
    """One article published from many threads at once: one transaction wins, DynamoDB cancels the rest."""
    article_id = _article(stack, number)
    with ThreadPoolExecutor(CONCURRENT_PUBLISHES) as pool:
        statuses = list(pool.map(
            lambda _: stack.request("POST", f"/admin/articles/{article_id}/publish", editor=True).status,
            range(CONCURRENT_PUBLISHES),
        ))  # fmt: skip
    assert set(statuses) == {200}, statuses
    _wait_done(stack, article_id)


def run() -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory() as folder, local_stack_process(Path(folder) / "local.log") as stack:
        timings: dict[int, list[float]] = {}
        memory: dict[int, float] = {}
        published = 0
        for size in (SMALL, LARGE):
            while published < size:
                if published == SMALL:
                    publish_concurrently(stack, published)
                else:
                    timings.setdefault(size, []).append(publish_to_done(stack, published))
                published += 1
            memory[size] = stack_rss_mb(stack.pid)
        assert stack.denials() == [], stack.denials()
    for figure, small, large, unit in (
        ("resident memory of the stack", memory[SMALL], memory[LARGE], "MB"),
        (
            "publish-to-done time (median of the last 10)",
            statistics.median(timings[SMALL][-MEASURED_PUBLISHES:]),
            statistics.median(timings[LARGE][-MEASURED_PUBLISHES:]),
            "s",
        ),
    ):
        ratio = large / small
        rows.append(
            {
                "benchmark": "local stack",
                "figure": f"{figure}, {LARGE} / {SMALL} articles ({small:.2f} / {large:.2f} {unit})",
                "value": f"{ratio:.2f}",
                "target": f"<= {TARGET}",
                "result": "PASS" if ratio <= TARGET else "SHORT",
            }
        )
    return rows


def format_table(rows: list[Row]) -> str:
    lines = [f"local stack: {SMALL} vs {LARGE} articles published one after another (plus one concurrent publish)"]
    lines += [f"  {row['figure']:78} {row['value']:>6}  {row['target']}  {row['result']}" for row in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    table = run()
    print(format_table(table))
    sys.exit(0 if all(row["result"] == "PASS" for row in table) else 1)
