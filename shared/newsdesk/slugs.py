"""URL-safe names, with python-slugify: article slugs, tags, and the author part of feed keys."""

from __future__ import annotations


def make_slug(text: str) -> str:
    from slugify import slugify

    return slugify(text, max_length=70, word_boundary=True) or "article"


def normalize_tag(tag: str) -> str:
    from slugify import slugify

    return slugify(tag, max_length=40)
