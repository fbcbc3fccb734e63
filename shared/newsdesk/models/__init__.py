"""Pydantic models, kept apart by role: requests, responses, and the domain shapes in between."""
