"""What Newsdesk sends: each email's content from its template files, as MIME ready for SES."""

from __future__ import annotations

from dataclasses import dataclass

from newsdesk.messages import PREFERENCES_URL, UNSUBSCRIBE_URL, MessageTemplate, Recipient
from newsdesk.models.articles import Article
from newsdesk.rendering import plain_text
from newsdesk.services.links import CONFIRM_DAYS
from newsdesk.templating import render


@dataclass(frozen=True)
class EmailComposer:
    sender: str
    publication: str
    site_url: str

    def confirmation(self, recipient: Recipient, confirm_url: str) -> bytes:
        context = {"publication": self.publication, "confirm_url": confirm_url, "valid_days": CONFIRM_DAYS}
        return MessageTemplate(
            sender=self.sender,
            sender_name=self.publication,
            subject=f"Confirm your subscription to {self.publication}",
            html_body=render("email/confirmation.html", **context),
            text_body=render("email/confirmation.txt", **context),
            list_unsubscribe=False,
        ).render(recipient)

    def newsletter(self, article: Article) -> MessageTemplate:
        """The article as an email; render it for each subscriber with their own links."""
        context = {
            "publication": self.publication,
            "title": article.title,
            "author": article.author,
            "html": article.html,
            "text": plain_text(article.html),
            "article_url": f"{self.site_url}/articles/{article.slug}",
            "unsubscribe_url": UNSUBSCRIBE_URL,
            "preferences_url": PREFERENCES_URL,
        }
        return MessageTemplate(
            sender=self.sender,
            sender_name=self.publication,
            subject=article.title,
            html_body=render("email/newsletter.html", **context),
            text_body=render("email/newsletter.txt", **context),
            list_unsubscribe=True,
        )
