"""Newsletter delivery: the pipeline against the floor of exactly-once delivery, its memory, its throttled rate.

One moto server (bench/emulator.py, in a process of its own) serves every run. Each run is a fresh worker
process (bench/fanout_worker.py) with its own copy of the template's tables and queues, so no run benefits
from another's state, and each peak RSS is that run's own:

- floor: read the confirmed subscribers page by page and, for each, one DynamoDB PutItem (the delivery
  record) and one SESv2 SendEmail of a prebuilt raw message, with the product's own clients;
- pipeline: publish through the EditorFunction, then FanoutFunction and MailerFunction fed by the local
  runner's event sources (drained in the worker, one invocation at a time) until every queue is empty.

Floor and pipeline at 10,000 subscribers run twice each, in the order floor, pipeline, pipeline, floor, and
the ratio is between their medians; pacing is off for them (SEND_RATE_PER_SECOND far above what the
emulator can take), since the floor has none. Two cross-checks stand beside it, because the load of a shared
machine swings from one run to the next: the ratio of CPU seconds (worker and emulator), and the ratio of
wall times each counted in its own run's mean SendEmail and PutItem call, the work both sides share.

Those pipeline runs and one at 50,000 give the peak RSS figures. The throttled runs put SES behind a
stand-in that refuses more than R sends a second (a token bucket with bursts of R/10), with
SEND_RATE_PER_SECOND = R and MAILER_CONCURRENCY = 1 (the drain runs one mailer at a time): once at the
issue's R = 200/s, and once at 50/s, a limit this emulator can keep up with. After every run the
emulator's SES store is read: each subscriber must have exactly one email.

The topic run (issue 14) publishes an article of a topic that every tenth of 10,000 subscribers follows (the
others follow another topic) and counts what fan-out's queries examine (DynamoDB's ScannedCount): the
topic's readers and nothing else, never the whole list. `python -m bench.fanout --topics` runs only it.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.emulator import ROOT, Emulator, child_environment, read_line, stop_process
from bench.fanout_worker import DRAIN_TIMEOUT_SECONDS, email_of

SUBSCRIBERS = 10_000
ORDER = ("floor", "pipeline", "pipeline", "floor")
RSS_SIZES = (10_000, 50_000)
THROTTLED_SUBSCRIBERS = 2_000
R = 200.0  # the SES stand-in's limit, messages per second
R_LOW = 50.0  # a second limit, below what the pipeline manages on this emulator, so the pacing is what binds
UNPACED_RATE = 1_000_000.0  # SEND_RATE_PER_SECOND for the unthrottled runs: the pacer never waits

TOPIC_EVERY = 10  # the topic run: every tenth subscriber follows the article's topic
PAGE_SIZE = 100  # fan-out's page (services.delivery.BATCH_SIZE)
FANOUT_SHARDS = 8  # dal.subscribers.FANOUT_SHARDS
RATIO_TARGET = 1.25
RSS_TARGET = 1.10
RATE_TARGET = 0.90

Row = dict[str, Any]


@dataclass(frozen=True)
class Run:
    """One worker's job and what came of it, the emulator's SES store included."""

    job: dict[str, Any]
    result: dict[str, Any]
    lost: int
    duplicates: int
    strangers: int

    @property
    def seconds(self) -> float:
        return float(self.result["seconds"])

    @property
    def cpu_seconds(self) -> float:
        """CPU of the worker and of the emulator during the timed part."""
        return float(self.result["cpu_seconds"]) + float(self.result["emulator_cpu_seconds"])

    @property
    def adjusted(self) -> float:
        """Wall time in units of this run's own mean SendEmail and PutItem call: those calls are the same in
        floor and pipeline, so the unit moves with the load the shared machine was under during the run."""
        calls = self.result["calls"]
        shared = [calls[name] for name in ("sesv2.SendEmail", "dynamodb.PutItem") if name in calls]
        count, seconds = sum(n for n, _ in shared), sum(s for _, s in shared)
        return self.seconds * count / seconds if seconds else 0.0

    @property
    def rss_mb(self) -> float:
        return float(self.result["max_rss_kb"]) / 1024

    @property
    def recipients(self) -> int:
        """How many should get the email: every subscriber, or in the topic run the topic's readers."""
        count = int(self.job["subscribers"])
        return len(range(0, count, TOPIC_EVERY)) if self.job["mode"] == "topic" else count

    @property
    def intact(self) -> bool:
        """Every subscriber got exactly one email, and the product agrees that all were sent."""
        result, count = self.result, self.recipients
        return (
            self.lost == 0
            and self.duplicates == 0
            and self.strangers == 0
            and result["state"] == "done"
            and result["sent"] == count
            and result["dead_letters"] == 0
        )

    def delivery(self) -> str:
        count = self.recipients
        if self.intact:
            return f"{count:,}/{count:,} exactly once"
        result = self.result
        return (
            f"lost {self.lost}, duplicates {self.duplicates}, unknown {self.strangers}, state {result['state']}, "
            f"sent {result['sent']}, dead letters {result['dead_letters']}"
        )


def _run(emulator: Emulator, mode: str, subscribers: int, label: str, **settings: float) -> Run:
    """One worker process, start to finish; then the emulator's SES store is counted."""
    job: dict[str, Any] = {
        "mode": mode,
        "endpoint": emulator.endpoint,
        "prefix": f"bench-{label}",
        "subscribers": subscribers,
        "send_rate": UNPACED_RATE,
        "mailer_concurrency": 1,
        "emulator_pid": emulator.pid,
        **settings,
    }
    started = time.perf_counter()
    # Its own session, so Ctrl-C reaches only this process, which then stops the worker itself.
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.fanout_worker", json.dumps(job)],
        cwd=ROOT,
        env=child_environment(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        result = read_line(process, DRAIN_TIMEOUT_SECONDS + 600, f"worker {label}")
    finally:
        stop_process(process)
    received = Counter(emulator.take_sent())
    expected = {email_of(n) for n in range(subscribers) if mode != "topic" or n % TOPIC_EVERY == 0}
    run = Run(
        job=job,
        result=result,
        lost=len(expected - received.keys()),
        duplicates=sum(count - 1 for count in received.values()),
        strangers=len(received.keys() - expected),
    )
    _progress(
        f"{label}: {mode} of {subscribers:,} took {run.seconds:.1f} s (CPU {run.cpu_seconds:.1f} s), peak RSS "
        f"{run.rss_mb:.0f} MB, {run.delivery()}; {time.perf_counter() - started:.0f} s with set-up"
    )
    return run


# ---------------------------------------------------------------------------------------------- rows
def _mean_calls(runs: list[Run]) -> dict[str, tuple[float, float]]:
    """Operation -> (calls, seconds) of the timed part, averaged over the runs."""
    totals: dict[str, list[float]] = {}
    for run in runs:
        for operation, (calls, seconds) in run.result["calls"].items():
            total = totals.setdefault(operation, [0.0, 0.0])
            total[0] += calls
            total[1] += seconds
    return {operation: (calls / len(runs), seconds / len(runs)) for operation, (calls, seconds) in totals.items()}


def _ratio_row(floors: list[Run], pipelines: list[Run]) -> Row:
    floor = statistics.median(run.seconds for run in floors)
    pipeline = statistics.median(run.seconds for run in pipelines)
    cpu_ratio = statistics.median(run.cpu_seconds for run in pipelines) / statistics.median(
        run.cpu_seconds for run in floors
    )
    adjusted_ratio = statistics.median(run.adjusted for run in pipelines) / statistics.median(
        run.adjusted for run in floors
    )
    ratio = pipeline / floor
    intact = all(run.intact for run in floors + pipelines)
    return {
        "benchmark": "fanout",
        "metric": f"pipeline / floor wall time, {SUBSCRIBERS:,} subscribers",
        "measured": (
            f"floor {_each(floors)} s, pipeline {_each(pipelines)} s; load-adjusted ratio {adjusted_ratio:.2f}, "
            f"CPU ratio (worker + emulator) {cpu_ratio:.2f}"
        ),
        "floor_seconds": round(floor, 2),
        "pipeline_seconds": round(pipeline, 2),
        "cpu_ratio": round(cpu_ratio, 3),
        "adjusted_ratio": round(adjusted_ratio, 3),
        "floor_calls": _mean_calls(floors),
        "pipeline_calls": _mean_calls(pipelines),
        "floor_in_process_seconds": statistics.mean(_in_process(run) for run in floors),
        "pipeline_in_process_seconds": statistics.mean(_in_process(run) for run in pipelines),
        **{
            f"{side}_{key}": statistics.mean(float(run.result[key]) for run in runs)
            for side, runs in (("floor", floors), ("pipeline", pipelines))
            for key in ("cpu_seconds", "emulator_cpu_seconds")
        },
        "value": round(ratio, 3),
        "target": f"<= {RATIO_TARGET:.2f}",
        "delivery": "all exactly once" if intact else "; ".join(run.delivery() for run in floors + pipelines),
        "result": "PASS" if ratio <= RATIO_TARGET and intact else "SHORT",
    }


def _rss_row(runs: dict[int, list[Run]]) -> Row:
    small, large = RSS_SIZES
    # A size's figure is the highest peak among its runs (each run is a process of its own).
    peaks = {size: max(run.rss_mb for run in runs[size]) for size in RSS_SIZES}
    ratio = max(peaks.values()) / min(peaks.values())
    everything = [run for size in RSS_SIZES for run in runs[size]]
    intact = all(run.intact for run in everything)
    return {
        "benchmark": "fanout",
        "metric": f"peak RSS of the pipeline process, larger / smaller of {small:,} and {large:,}",
        "measured": (
            f"{peaks[small]:.1f} MB at {small:,}, {peaks[large]:.1f} MB at {large:,} "
            f"(the {large:,} pipeline took {runs[large][0].seconds:.0f} s)"
        ),
        "rss_mb_small": round(peaks[small], 1),
        "rss_mb_large": round(peaks[large], 1),
        "large_seconds": round(runs[large][0].seconds, 1),
        "value": round(ratio, 3),
        "target": f"<= {RSS_TARGET:.2f}",
        "delivery": "all exactly once" if intact else "; ".join(run.delivery() for run in everything),
        "result": "PASS" if ratio <= RSS_TARGET and intact else "SHORT",
    }


def _rate_row(run: Run, limit: float, unpaced_rate: float) -> Row:
    result = run.result
    span = float(result["last_send"]) - float(result["first_send"])
    accepted = int(result["accepted"])
    rate = accepted / span if span > 0 else 0.0
    fraction = rate / limit
    intact = run.intact and result["duplicates"] == 0
    metric = f"send rate under an SES limit of R = {limit:.0f}/s, as a fraction of R"
    if limit != R:
        metric += " (extra)"
    return {
        "benchmark": "fanout",
        "metric": metric,
        "extra": limit != R,
        "limit": limit,
        "measured": (
            f"{accepted:,} accepted at {rate:.1f}/s, {result['throttles']} throttled, {result['stalls']} pauses "
            f"of 2/R or more losing {result['stall_seconds']:.1f} s; unthrottled, unpaced: {unpaced_rate:.0f}/s"
        ),
        "rate": round(rate, 1),
        "unpaced_rate": round(unpaced_rate, 1),
        "throttles": int(result["throttles"]),
        "value": round(fraction, 3),
        "target": f">= {RATE_TARGET:.2f}",
        "delivery": run.delivery(),
        "result": "PASS" if fraction >= RATE_TARGET and intact else "SHORT",
    }


def _topic_row(run: Run) -> Row:
    """Items fan-out examined for an article of a topic holding a tenth of the list: at most its readers; the
    queries, at most one page per PAGE_SIZE readers plus one per shard and pass (the everything pass and the
    topic's)."""
    result, readers, count = run.result, run.recipients, int(run.job["subscribers"])
    examined, queries = int(result["examined"]), int(result["audience_queries"])
    passes = 2
    query_bound = math.ceil(readers / PAGE_SIZE) + FANOUT_SHARDS * passes
    # Exactly once as the emulator's SES store counts it (this run does not wait for SES's events).
    once = run.lost == 0 and run.duplicates == 0 and run.strangers == 0 and int(result["dead_letters"]) == 0
    ok = once and examined <= readers and queries <= query_bound
    return {
        "benchmark": "fanout",
        "metric": f"items fan-out examined, article of a topic holding {readers:,} of {count:,}",
        "measured": (
            f"{examined:,} items in {queries} queries (at most {query_bound}: {readers:,} readers a page of "
            f"{PAGE_SIZE} at a time, plus one per shard and pass); the whole list would be {count:,}; "
            f"{run.seconds:.1f} s"
        ),
        "examined": examined,
        "audience_queries": queries,
        "value": float(examined),
        "target": f"<= {readers:,}",
        "delivery": f"{readers:,}/{readers:,} exactly once" if once else run.delivery(),
        "result": "PASS" if ok else "SHORT",
    }


def run_topics() -> list[Row]:
    """Only the topic run (`--topics`)."""
    with Emulator() as emulator:
        _progress(f"moto server at {emulator.endpoint} (pid {emulator.pid})")
        return [_topic_row(_run(emulator, "topic", SUBSCRIBERS, "topic", topic_every=TOPIC_EVERY))]


def run() -> list[Row]:
    """Every run against one emulator; one row per figure."""
    started = time.perf_counter()
    with Emulator() as emulator:
        _progress(f"moto server at {emulator.endpoint} (pid {emulator.pid})")
        runs: dict[str, list[Run]] = {"floor": [], "pipeline": []}
        for index, mode in enumerate(ORDER):
            runs[mode].append(_run(emulator, mode, SUBSCRIBERS, f"{mode}-{index}"))
        large = _run(emulator, "pipeline", RSS_SIZES[1], "pipeline-large")
        throttled = {
            rate: _run(
                emulator,
                "throttled",
                THROTTLED_SUBSCRIBERS,
                f"throttled-{rate:.0f}",
                send_rate=rate,
                throttle_rate=rate,
                throttle_burst=rate / 10,
            )
            for rate in (R, R_LOW)
        }
        topic = _run(emulator, "topic", SUBSCRIBERS, "topic", topic_every=TOPIC_EVERY)
    unpaced = SUBSCRIBERS / statistics.median(run.seconds for run in runs["pipeline"])
    rows = [
        _ratio_row(runs["floor"], runs["pipeline"]),
        _rss_row({RSS_SIZES[0]: runs["pipeline"], RSS_SIZES[1]: [large]}),
        _rate_row(throttled[R], R, unpaced),
        _rate_row(throttled[R_LOW], R_LOW, unpaced),
        _topic_row(topic),
    ]
    _progress(f"all runs done in {time.perf_counter() - started:.0f} s")
    return rows


# ---------------------------------------------------------------------------------------------- report
def _each(runs: list[Run]) -> str:
    return " / ".join(f"{run.seconds:.1f}" for run in runs)


def _in_process(run: Run) -> float:
    """Seconds of the timed part outside AWS client calls: the process's own work (and waiting for a CPU)."""
    return run.seconds - sum(seconds for _, seconds in run.result["calls"].values())


def _columns(headers: tuple[str, ...], lines: Sequence[tuple[str, ...]], right: set[int]) -> list[str]:
    """Fixed-width lines; the columns numbered in `right` are aligned right, the others left."""
    widths = [max(len(cells[i]) for cells in (headers, *lines)) for i in range(len(headers))]

    def render(cells: tuple[str, ...]) -> str:
        aligned = (
            cell.rjust(width) if index in right else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )
        return "  ".join(aligned).rstrip()

    return [render(headers), "  ".join("-" * width for width in widths), *map(render, lines)]


def _breakdown(row: Row) -> list[str]:
    """Where the time of the floor and the pipeline goes, operation by operation."""
    floor, pipeline = row["floor_calls"], row["pipeline_calls"]
    operations = sorted(set(floor) | set(pipeline), key=lambda name: -pipeline.get(name, (0, 0.0))[1])
    lines = [
        (
            name,
            f"{floor.get(name, (0, 0.0))[0]:,.0f}",
            f"{floor.get(name, (0, 0.0))[1]:.1f}",
            f"{pipeline.get(name, (0, 0.0))[0]:,.0f}",
            f"{pipeline.get(name, (0, 0.0))[1]:.1f}",
        )
        for name in operations
    ]
    lines.append(
        (
            "outside AWS client calls",
            "",
            f"{row['floor_in_process_seconds']:.1f}",
            "",
            f"{row['pipeline_in_process_seconds']:.1f}",
        )
    )
    for label, key in (("CPU of the worker process", "cpu_seconds"), ("CPU of the emulator", "emulator_cpu_seconds")):
        lines.append((label, "", f"{row['floor_' + key]:.1f}", "", f"{row['pipeline_' + key]:.1f}"))
    headers = ("operation (mean of the runs)", "floor calls", "floor s", "pipeline calls", "pipeline s")
    return [f"where the time goes at {SUBSCRIBERS:,} subscribers:", *_columns(headers, lines, {1, 2, 3, 4})]


def format_table(rows: list[Row]) -> str:
    """The rows as a fixed-width text table, then the floor and pipeline time by AWS operation."""
    if not rows:
        return "fanout: no rows"
    headers = ("metric", "measured", "value", "target", "delivery", "result")
    lines = [
        (row["metric"], row["measured"], _value(row), row["target"], row["delivery"], row["result"]) for row in rows
    ]
    title = (
        "fanout: newsletter delivery against moto (a process of its own), each run in a fresh worker process; "
        "MAILER_CONCURRENCY=1, as the local drain runs one mailer at a time"
    )
    table = [title, *_columns(headers, lines, {2})]
    ratio_rows = [row for row in rows if "floor_calls" in row]
    if ratio_rows:
        table += ["", *_breakdown(ratio_rows[0])]
    return "\n".join(table)


def _value(row: Row) -> str:
    return f"{row['value']:,.0f}" if "examined" in row else f"{row['value']:.3f}"


def summary_rows(rows: list[Row]) -> list[Row]:
    """The lines of `python -m bench`'s combined report (the issue's figures only, not the extra rate)."""
    return [
        {
            "benchmark": "fanout",
            "figure": row["metric"],
            "value": _value(row),
            "target": row["target"],
            "result": row["result"],
        }
        for row in rows
        if not row.get("extra")
    ]


def _progress(message: str) -> None:
    print(f"[fanout] {message}", file=sys.stderr, flush=True)


def main() -> None:
    print(format_table(run_topics() if "--topics" in sys.argv[1:] else run()))


if __name__ == "__main__":
    main()
