"""Logger, Tracer and Metrics, created once for every function."""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()

# Most requests (reads, refusals) record no metric; Powertools would warn about that on every one.
warnings.filterwarnings("ignore", message="No application metrics to publish")
