"""Logger, Tracer and Metrics, created once per process. The tracer is made when a module first imports it: a
function that does not (AuthorizerFunction) never loads the X-Ray SDK nor has it patch botocore."""

from __future__ import annotations

import warnings
from collections.abc import Generator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

from newsdesk.redaction import scrubbed


class AddressScrubbingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON lines with every email address replaced, in the message, the extra keys and
    exception texts alike: logs are kept for weeks, and an erased person must not live on in them."""

    def serialize(self, log: Any) -> str:
        return super().serialize(scrubbed(log))


class UntracedSegment(BaseSegment):
    """A segment that records nothing, for a function that runs without tracing."""

    def close(self, end_time: int | None = None) -> None: ...
    def add_subsegment(self, subsegment: Any) -> None: ...
    def remove_subsegment(self, subsegment: Any) -> None: ...
    def put_annotation(self, key: str, value: Any) -> None: ...
    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None: ...
    def add_exception(self, exception: BaseException, stack: Any, remote: bool = False) -> None: ...


class Untraced(BaseProvider):
    """The tracer's provider where tracing is off: Powertools' Tracer would otherwise import the X-Ray SDK
    (with boto3's resource layer) at every cold start only to record nothing (bench/cold_start.py)."""

    @contextmanager
    def in_subsegment(self, name: Any = None, **kwargs: Any) -> Generator[BaseSegment, None, None]:
        yield UntracedSegment()

    def in_subsegment_async(self, name: Any = None, **kwargs: Any) -> Any:
        raise NotImplementedError("no asynchronous handler here")

    def put_annotation(self, key: str, value: Any) -> None: ...
    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None: ...
    def patch(self, modules: Sequence[str]) -> None: ...
    def patch_all(self) -> None: ...


def stack_metric(name: str, stack: str, value: float = 1) -> None:
    """Publish a count an alarm of the stack watches, at once, with the stack's name as a dimension: two
    stacks in one account (staging beside production) share the namespace, and each alarm must see its own."""
    with single_metric(name=name, unit=MetricUnit.Count, value=value, default_dimensions={"stack": stack}):
        pass


logger = Logger(logger_formatter=AddressScrubbingFormatter())
metrics = Metrics()

if TYPE_CHECKING:
    tracer: Tracer


def __getattr__(name: str) -> Any:
    """`tracer`, made on first import (then an ordinary attribute of this module)."""
    if name != "tracer":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    global tracer
    # Powertools' own rule decides whether tracing is off (POWERTOOLS_TRACE_DISABLED, or not in Lambda).
    tracer = Tracer(provider=Untraced()) if Tracer._is_tracer_disabled() else Tracer()
    return tracer


# Most requests (reads, refusals) record no metric; Powertools would warn about that on every one.
warnings.filterwarnings("ignore", message="No application metrics to publish")
