"""Engagement, private by default: with TrackEngagement on, SES reports opens and clicks, and Newsdesk keeps
only aggregate counts per delivery — never who opened or clicked.

Opens and clicks come about as fast as a delivery's emails arrive (mail privacy proxies open every email on
delivery): the counts a batch of SES events adds are written once per delivery and link at the end of the
batch (`flush`), not once per event, so the delivery's counters take a few writes a second at any send rate.

Not every open or click is a person. Apple Mail Privacy Protection fetches every image of every email
through Apple's proxies (addresses in 17.0.0.0/8) whether or not anyone reads it: those opens are counted
as `machine_opens`. Mail security scanners follow links before delivery reaches a person: a click within
SCANNER_SECONDS of sending, or from a scanner's user agent, is counted as a `scanner_click`. A unique open
is remembered, as a keyed hash of the message id, only for UNIQUE_WINDOW, to count each message once.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from newsdesk.clock import utc_now
from newsdesk.dal.publications import PublicationRepository

if TYPE_CHECKING:
    from newsdesk.services.ses_event import SesEvent

SCANNER_SECONDS = 10
UNIQUE_WINDOW = timedelta(days=30)
MAIL_PRIVACY_PROXIES = (ipaddress.ip_network("17.0.0.0/8"),)
SCANNER_AGENTS = ("barracuda", "proofpoint", "mimecast", "safelinks", "urldefense", "python-requests", "curl/")


def _when(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def is_machine_open(ip_address: str, user_agent: str) -> bool:
    try:
        address = ipaddress.ip_address(ip_address)
    except ValueError:
        return False
    return any(address in network for network in MAIL_PRIVACY_PROXIES) or "googleimageproxy" in user_agent.lower()


def is_scanner_click(user_agent: str, clicked_at: datetime | None, sent_at: datetime | None) -> bool:
    if any(agent in user_agent.lower() for agent in SCANNER_AGENTS):
        return True
    return clicked_at is not None and sent_at is not None and (clicked_at - sent_at).total_seconds() < SCANNER_SECONDS


class EngagementCounter:
    def __init__(
        self, publications: PublicationRepository, secret: bytes, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._publications = publications
        self._key = hmac.new(secret, b"newsdesk.engagement", hashlib.sha256).digest()
        self._clock = clock
        # Counted since the last flush: (delivery, what) -> how many; clicks by (delivery, link).
        self._counts: Counter[tuple[str, str]] = Counter()
        self._clicks: Counter[tuple[str, str]] = Counter()

    def _marker(self, *parts: str) -> str:
        return hmac.new(self._key, "\n".join(parts).encode(), hashlib.sha256).hexdigest()[:32]

    def count(self, delivery_id: str, event: SesEvent) -> None:
        message_id = event.message_id or ""
        forget_at = self._clock() + UNIQUE_WINDOW
        sent_at = _when((event.body.get("mail") or {}).get("timestamp"))
        if event.kind == "Open":
            opened = event.part("open")
            machine = is_machine_open(str(opened.get("ipAddress", "")), str(opened.get("userAgent", "")))
            kind = "machine" if machine else "open"
            if self._publications.first_sighting(self._marker(kind, message_id), forget_at=forget_at):
                self._counts[delivery_id, "machine_opens" if machine else "unique_opens"] += 1
            return
        clicked = event.part("click")
        link = str(clicked.get("link", ""))
        when = str(clicked.get("timestamp", ""))
        # Each click event once (the queue may deliver it twice); clicks are not unique per person.
        if not self._publications.first_sighting(self._marker("click", message_id, link, when), forget_at=forget_at):
            return
        if is_scanner_click(str(clicked.get("userAgent", "")), _when(when), sent_at):
            self._counts[delivery_id, "scanner_clicks"] += 1
        else:
            self._clicks[delivery_id, link] += 1

    def flush(self) -> None:
        """Add what was counted since the last flush to the deliveries' counters. An event is counted when its
        marker is first written, so one whose count a crash lost before the flush is not counted again: the
        counts may fall short, never count an open or click twice."""
        counts, clicks = self._counts, self._clicks
        self._counts, self._clicks = Counter(), Counter()
        for delivery_id in sorted({delivery_id for delivery_id, _ in counts}):
            self._publications.add_engagement(
                delivery_id,
                unique_opens=counts[delivery_id, "unique_opens"],
                machine_opens=counts[delivery_id, "machine_opens"],
                scanner_clicks=counts[delivery_id, "scanner_clicks"],
            )
        for (delivery_id, link), number in sorted(clicks.items()):
            self._publications.add_clicks(delivery_id, link, hashlib.sha256(link.encode()).hexdigest()[:16], number)
