"""Services for the routes, built once per process from the settings; tests swap them through
`app.dependency_overrides` or by clearing these caches."""

from __future__ import annotations

from functools import lru_cache

from newsdesk.dal.articles import ArticleRepository
from newsdesk.dal.dynamodb import dynamodb_client
from newsdesk.dal.tokens import TokenRepository
from newsdesk.services.articles import ArticleService
from newsdesk.services.tokens import TokenService
from newsdesk.settings import get_settings


@lru_cache(maxsize=1)
def article_service() -> ArticleService:
    settings = get_settings()
    repository = ArticleRepository(dynamodb_client(), settings.articles_table)
    return ArticleService(repository, publications_table=settings.deliveries_table)


@lru_cache(maxsize=1)
def token_service() -> TokenService:
    return TokenService(TokenRepository(dynamodb_client(), get_settings().tokens_table))


def reset() -> None:
    """Forget every cached service (tests call this after changing the environment)."""
    for factory in (article_service, token_service, get_settings, dynamodb_client):
        factory.cache_clear()
