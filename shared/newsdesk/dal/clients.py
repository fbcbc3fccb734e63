"""A boto3 client made on its first use, for services a function reaches only on some requests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class LazyClient:
    """Stands for the client `factory()` makes, made when first asked for anything: making a client loads its
    service's model, tens of milliseconds of a cold start for a client the first request may never use
    (bench/cold_start.py)."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = self._factory()
        return getattr(self._client, name)
