"""The base of the product's pydantic models.

The modules defining models (these and newsdesk.settings) do not use `from __future__ import annotations`:
pydantic would then evaluate each field's annotation from its string when the class is made, which made
making a model class about half as slow again, and a function makes 50 to 100 of them as it loads
(bench/cold_start.py). A model's method returning the model says `Self`.
"""

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """A pydantic model whose validator and serializer are built when it is first used, not when its module is
    imported: a function imports many more models than its request uses (each service brings its own), and
    building them all was a large part of every cold start (bench/cold_start.py)."""

    model_config = ConfigDict(defer_build=True)


def build_imported_models() -> None:
    """Build every model imported so far that is not built yet: what a SnapStart snapshot should hold, so that
    no resumed environment builds them again (and what tests do before a test may freeze the clock)."""
    pending: list[type[Model]] = [Model]
    while pending:
        model = pending.pop()
        pending += model.__subclasses__()
        if model is not Model and not model.__pydantic_complete__:
            model.model_rebuild()
