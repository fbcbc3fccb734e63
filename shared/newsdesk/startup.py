"""A function's load and first invocation without the cyclic garbage collector.

Loading a handler creates a few hundred thousand objects (modules, classes, botocore's models) that live as long
as the process, and its first invocation loads and builds more (the services, models and clients a request
needs). Meanwhile the collector runs over a hundred times per load, and each of its full collections traverses
all of them again. The collector is off from this module's import, which a handler module makes before any
other. `loaded`, the handler's outermost decorator, freezes what the load made (`gc.freeze()`: no later
collection traverses it again, in any invocation), and the collector comes back on when the first invocation
returns. What the first invocation leaves as garbage in reference cycles is collected then.
"""

from __future__ import annotations

import gc

gc.disable()  # before anything else this module imports: typing's import alone ran collections

import functools  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import ParamSpec, TypeVar  # noqa: E402

P = ParamSpec("P")
R = TypeVar("R")


def loaded(handler: Callable[P, R]) -> Callable[P, R]:
    """`handler`, whose module has loaded: the load's objects frozen, the collector back on after its first call."""
    gc.freeze()

    @functools.wraps(handler)
    def invoke(*args: P.args, **kwargs: P.kwargs) -> R:
        if gc.isenabled():
            return handler(*args, **kwargs)
        try:
            return handler(*args, **kwargs)
        finally:
            gc.enable()

    return invoke
