"""The base of the product's pydantic models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """A pydantic model whose validator and serializer are built when it is first used, not when its module is
    imported: a function imports many more models than its request uses (each service brings its own), and
    building them all was a large part of every cold start (bench/cold_start.py)."""

    model_config = ConfigDict(defer_build=True)
