"""How many confirmation emails Newsdesk sends, so that nobody can use its sign-up form as a mail cannon.

Three limits, each a template parameter: per mailbox (variants of one inbox such as `a+x@`, `a.b@gmail.com`
count together) per day, per source address of the request per hour, and for the whole stack per hour.
A confirmation is sent only when every limit that applies has room; the counts are taken in that order
and given back when a later one refuses, so a refused request uses up nothing.

On top of these, sign-ups' confirmations pause while too many of them bounce (ConfirmationBounces): a
script signing up made-up addresses would otherwise spend the SES account's reputation, one bounce at a
time, within every limit above.

Editors' test emails have a limit of their own: per token per hour.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from newsdesk.dal.limits import RateLimitRepository
from newsdesk.models.addresses import mailbox
from newsdesk.observability import logger, stack_metric
from newsdesk.services.links import Pseudonyms

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
EMAIL_TAG = "newsdesk-email"
"""The message tag that says what an email is; SES's events about the email carry it back."""
SIGNUP_CONFIRMATION = "signup-confirmation"
"""EMAIL_TAG's value on the confirmation a sign-up (POST /subscribers) sends."""
PAUSE_MIN_SAMPLE = 20
"""Confirmations the last hour must hold before its bounce rate may pause them: 1 bounce of 2 says little."""
PAUSED_METRIC = "ConfirmationsPaused"
_ALL = "all"
_BOUNCES = "confirmation-bounce"
ERASED_WINDOWS = 3
"""Daily windows of an erased person's mailbox counter that are deleted: today's, and the two before, which
DynamoDB's TTL (usually within 48 hours of expiry) may not have removed yet."""


class Limit(StrEnum):
    SOURCE = "source"
    MAILBOX = "mailbox"
    GLOBAL = "global"
    BOUNCE_RATE = "bounce-rate"


@dataclass(frozen=True)
class LimitSettings:
    per_mailbox_per_day: int
    per_source_per_hour: int
    per_hour: int
    exempt_loopback: bool = False
    """Only the local stack sets this: there every script and test signs up from 127.0.0.1. API Gateway
    fills `sourceIp` from the connection itself, so no client can make a request look like loopback."""


def _start(moment: datetime, window: timedelta) -> datetime:
    start = moment.replace(minute=0, second=0, microsecond=0)
    return start.replace(hour=0) if window == DAY else start


def source_of(ip: str | None) -> tuple[str, bool]:
    """The group a request's source address counts in, and whether it is loopback. An IPv6 client
    usually holds a whole /64, so the /64 is what counts."""
    try:
        address = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return "unknown", False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/64", strict=False)), address.is_loopback
    return str(address), address.is_loopback


@dataclass(frozen=True)
class LastHour:
    """Sign-ups' confirmations sent and bounced in the last hour (estimated, see ConfirmationBounces.last_hour)."""

    sent: float
    bounced: float

    def over(self, max_rate: float) -> bool:
        return self.sent >= PAUSE_MIN_SAMPLE and self.bounced > max_rate * self.sent


class ConfirmationBounces:
    """The bounce rate of sign-ups' confirmations over the last hour; above `max_rate`, they pause.

    Sent: the hourly `global` counter of ConfirmationLimits (one per confirmation a sign-up sends). Bounced:
    a counter per hour the bounced confirmation was *sent* in, raised by SesEventsFunction once per SES
    message (the email's tag says it was a sign-up's confirmation). The last hour is the current clock
    hour's counts plus the previous hour's, weighted by how much of it is still within the last hour. While
    paused nothing is sent, so the estimate only falls: the pause ends once fewer than PAUSE_MIN_SAMPLE
    confirmations remain in the last hour (or its rate falls back), at most an hour after the last send.
    """

    def __init__(self, repository: RateLimitRepository, *, max_rate: float, stack: str) -> None:
        self._repo = repository
        self._max_rate = max_rate
        self._stack = stack

    def last_hour(self, now: datetime) -> LastHour:
        current = _start(now, HOUR)
        previous = current - HOUR
        sent_before, sent_now, bounced_before, bounced_now = self._repo.counts([
            (Limit.GLOBAL.value, _ALL, previous), (Limit.GLOBAL.value, _ALL, current),
            (_BOUNCES, _ALL, previous), (_BOUNCES, _ALL, current),
        ])  # fmt: skip
        weight = 1 - (now - current) / HOUR
        return LastHour(sent=sent_now + weight * sent_before, bounced=bounced_now + weight * bounced_before)

    def paused(self, now: datetime) -> bool:
        """Whether confirmations are paused now (ConfirmationsPaused is counted each time they are)."""
        last_hour = self.last_hour(now)
        if not last_hour.over(self._max_rate):
            return False
        stack_metric(PAUSED_METRIC, self._stack)
        logger.warning("sign-ups' confirmations are paused: too many bounce",
                       extra={"sent": round(last_hour.sent, 1), "bounced": round(last_hour.bounced, 1)})  # fmt: skip
        return True

    def count(self, message_id: str, *, sent_at: datetime, now: datetime) -> None:
        """Count the bounce of a sign-up's confirmation SES sent at `sent_at` (once per message)."""
        window = _start(sent_at, HOUR)
        if window < _start(now, HOUR) - HOUR:
            return  # sent before the last hour: it can pause nothing any more
        if self._repo.count_once(_BOUNCES, _ALL, window_start=window, window=HOUR, event_id=message_id):
            self.paused(now)  # the moment the rate passes the limit is a pause too, sign-ups or not


class ConfirmationLimits:
    def __init__(
        self,
        repository: RateLimitRepository,
        settings: LimitSettings,
        *,
        pseudonyms: Callable[[], Pseudonyms],
        bounces: Callable[[], ConfirmationBounces],
    ) -> None:
        self._repo = repository
        self._settings = settings
        self._pseudonyms = pseudonyms
        self._bounces = bounces

    def allow_signup(self, address: str, source_ip: str | None, now: datetime) -> Limit | None:
        """Count a sign-up's confirmation; None when it may be sent, else the limit that refused it."""
        if self._bounces().paused(now):
            return Limit.BOUNCE_RATE  # before any count is taken: a paused request uses up nothing
        source, loopback = source_of(source_ip)
        pseudonyms = self._pseudonyms()
        checks = [
            (Limit.MAILBOX, pseudonyms.of("mailbox", mailbox(address)), DAY, self._settings.per_mailbox_per_day),
            (Limit.GLOBAL, _ALL, HOUR, self._settings.per_hour),
        ]
        if not (loopback and self._settings.exempt_loopback):
            # First: a source over its limit must not use up the mailbox's or everyone's allowance.
            per_source = self._settings.per_source_per_hour
            checks.insert(0, (Limit.SOURCE, pseudonyms.of("source", source), HOUR, per_source))
        return self._take_all(checks, now)

    def allow_import(self, address: str, now: datetime) -> bool:
        """Count an imported address's confirmation against its mailbox (an editor's list is not limited
        per source, nor by the sign-up budget, but one inbox still gets no more than its share)."""
        subject = self._pseudonyms().of("mailbox", mailbox(address))
        return self._take_all([(Limit.MAILBOX, subject, DAY, self._settings.per_mailbox_per_day)], now) is None

    def forget(self, address: str, now: datetime) -> int:
        """Delete the counters named after an erased person's mailbox; how many there were. (A source counter
        names an IP address, shared by whoever signed up from it, and lasts an hour.)"""
        subject = self._pseudonyms().of("mailbox", mailbox(address))
        today = _start(now, DAY)
        return sum(
            self._repo.delete(Limit.MAILBOX.value, subject, window_start=today - DAY * back)
            for back in range(ERASED_WINDOWS)
        )

    def _take_all(self, checks: list[tuple[Limit, str, timedelta, int]], now: datetime) -> Limit | None:
        taken: list[tuple[Limit, str, datetime]] = []
        for limit, subject, window, allowed in checks:
            start = _start(now, window)
            if not self._repo.take(limit.value, subject, window_start=start, window=window, limit=allowed):
                for earlier, earlier_subject, earlier_start in taken:
                    self._repo.give_back(earlier.value, earlier_subject, window_start=earlier_start)
                return limit
            taken.append((limit, subject, start))
        return None


class TestEmailLimit:
    """Test emails per editor token per hour: a leaked or scripted token cannot turn the test route into a
    way of mailing anyone, as often as it likes, from the publication's address."""

    KIND = "test-email"

    def __init__(self, repository: RateLimitRepository, *, per_hour: int) -> None:
        self._repo = repository
        self.per_hour = per_hour

    def take(self, token: str | None, now: datetime) -> int | None:
        """Count one test email for `token`; None when it may be sent, else the seconds until the token has
        room again (the next hour)."""
        start = _start(now, HOUR)
        if self._repo.take(self.KIND, self._subject(token), window_start=start, window=HOUR, limit=self.per_hour):
            return None
        return max(1, math.ceil((start + HOUR - now).total_seconds()))

    def give_back(self, token: str | None, now: datetime) -> None:
        """Undo a `take` whose email was certainly not sent."""
        self._repo.give_back(self.KIND, self._subject(token), window_start=_start(now, HOUR))

    @staticmethod
    def _subject(token: str | None) -> str:
        # The token's hash, as TokensTable keys it: the counter never holds the token itself. Imported here:
        # the tokens' service (people, audit) is no part of the cold starts that only read SES's events.
        from newsdesk.services.tokens import hash_token

        return hash_token(token or "")
