"""What Newsdesk sends: each email's content from its template files, as MIME ready for SES."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from newsdesk.messages import PREFERENCES_URL, UNSUBSCRIBE_URL, MessageTemplate, Recipient
from newsdesk.models.articles import Article
from newsdesk.models.topics import Topic
from newsdesk.rendering import text_with_links
from newsdesk.services.links import CONFIRM_DAYS
from newsdesk.templating import render

TEST_SUBJECT_PREFIX = "[TEST] "
BREAKING_SUBJECT_PREFIX = "Breaking: "


@dataclass(frozen=True)
class EmailComposer:
    sender: str
    publication: str
    site_url: str
    privacy_policy_url: str = ""

    def confirmation(self, recipient: Recipient, confirm_url: str) -> bytes:
        context = {
            "publication": self.publication,
            "confirm_url": confirm_url,
            "valid_days": CONFIRM_DAYS,
            "privacy_policy_url": self.privacy_policy_url,
        }
        return MessageTemplate(
            sender=self.sender,
            sender_name=self.publication,
            subject=f"Confirm your subscription to {self.publication}",
            html_body=render("email/confirmation.html", **context),
            text_body=render("email/confirmation.txt", **context),
            list_unsubscribe=False,
        ).render(recipient)

    def breaking(self, article: Article) -> MessageTemplate:
        """A breaking-news alert: the article as its newsletter has it, marked breaking, for the readers who
        asked for alerts."""
        return self.newsletter(article, breaking=True)

    def newsletter(
        self, article: Article, *, sent_for: list[Topic] | None = None, test: bool = False, breaking: bool = False
    ) -> MessageTemplate:
        """The article as an email; render it for each subscriber with their own links. `sent_for`: the
        topics of the article the readers it goes to follow (None: they follow everything). A `test` copy
        says so in its subject and body, and has no unsubscribe links: its reader is not a subscriber."""
        context = {
            "test": test,
            "breaking": breaking,
            "topics": _names(sent_for),
            "publication": self.publication,
            "title": article.title,
            "author": article.author,
            "html": article.html,
            "text": text_with_links(article.html),
            "article_url": f"{self.site_url}/articles/{article.slug}",
            "unsubscribe_url": UNSUBSCRIBE_URL,
            "preferences_url": PREFERENCES_URL,
        }
        subject = f"{TEST_SUBJECT_PREFIX}{article.title}" if test else article.title
        if breaking:
            subject = f"{BREAKING_SUBJECT_PREFIX}{subject}"
        return self._to_subscribers(subject, "newsletter", context, list_unsubscribe=not test)

    def digest(self, articles: list[Article], *, sent_for: list[Topic] | None = None) -> MessageTemplate:
        """The articles of a digest period, newest first, each with its summary and link (for readers of
        `sent_for`, only the articles of those topics)."""
        context = {
            "topics": _names(sent_for),
            "publication": self.publication,
            "articles": [
                {
                    "title": a.title,
                    "author": a.author,
                    "summary": a.summary,
                    "url": f"{self.site_url}/articles/{a.slug}",
                }
                for a in articles
            ],
            "unsubscribe_url": UNSUBSCRIBE_URL,
            "preferences_url": PREFERENCES_URL,
        }
        count = f"{len(articles)} new article{'s' if len(articles) != 1 else ''}"
        return self._to_subscribers(f"{self.publication}: {count}", "digest", context)

    def _to_subscribers(
        self, subject: str, name: str, context: Mapping[str, object], *, list_unsubscribe: bool = True
    ) -> MessageTemplate:
        return MessageTemplate(
            sender=self.sender,
            sender_name=self.publication,
            subject=subject,
            html_body=render(f"email/{name}.html", **context),
            text_body=render(f"email/{name}.txt", **context),
            list_unsubscribe=list_unsubscribe,
        )


def _names(topics: list[Topic] | None) -> str | None:
    """`Harbour`, `Harbour and Council`, `Harbour, Council and Schools`; None for a reader of everything."""
    if topics is None:
        return None
    names = [topic.name for topic in topics]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
