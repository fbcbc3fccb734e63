"""Logger, Tracer and Metrics, created once for every function."""

from __future__ import annotations

import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from newsdesk.redaction import scrubbed


class AddressScrubbingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON lines with every email address replaced, in the message, the extra keys and
    exception texts alike: logs are kept for weeks, and an erased person must not live on in them."""

    def serialize(self, log: Any) -> str:
        return super().serialize(scrubbed(log))


logger = Logger(logger_formatter=AddressScrubbingFormatter())
tracer = Tracer()
metrics = Metrics()

# Most requests (reads, refusals) record no metric; Powertools would warn about that on every one.
warnings.filterwarnings("ignore", message="No application metrics to publish")
