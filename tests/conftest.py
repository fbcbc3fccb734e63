"""Settings every test process needs before any product module is imported (as Lambda has them at start)."""

from __future__ import annotations

import os

# The same Powertools settings as the template's Globals; tracing is off because there is no X-Ray here.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "newsdesk")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Newsdesk")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
