"""A function's init phase without the cyclic garbage collector.

Loading a handler creates a few hundred thousand objects (modules, classes, botocore's models) that live as long
as the process, and every full collection during the load traverses all of them again. The collector is off
from this module's import, which a handler module makes before any other, until `started()`, its last line:
that moves everything the load made to the permanent generation (`gc.freeze()`: later collections, in every
invocation, never traverse it again) and turns the collector back on.
"""

from __future__ import annotations

import gc

gc.disable()


def started() -> None:
    """The handler module has loaded: what it made stays, and the collector runs again."""
    gc.freeze()
    gc.enable()
