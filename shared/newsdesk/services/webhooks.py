"""Webhooks: endpoints editors register, the events offered to them, and each signed, retried POST.

1. Dispatch: every event on the bus reaches WebhooksFunction through a rule and a queue. It is offered to
   the enabled endpoints that asked for its type (read from one subscription partition per type, so an
   event nobody asked for costs one small Query), each offer recorded as a delivery (once per event and
   endpoint, whatever duplicates the bus or the queue make) and queued as its first attempt.
2. Attempt: one POST per event and endpoint, signed (`Newsdesk-Signature: t=<unix time>,v1=<hex HMAC-SHA256
   of "<t>.<body>">` with the endpoint's secret). A 2xx within 10 s succeeds; anything else is tried again
   after RETRY_BASE × 2^(n-1) (at most 12 hours), RETRY_ATTEMPTS attempts in all (29 hours with the
   deployed base of a minute), then the delivery is kept as failed. Every attempt sends the same body, so
   the event keeps its id; a replay sends it once more, with new retries.
3. Health: an endpoint none of whose attempts succeeded for DISABLE_AFTER is disabled (and says so), so a
   receiver gone for good stops costing attempts; an editor turns it back on.

Secrets are stored sealed (AES-GCM under a key derived from a signing key of the keyring, whose id the sealed
value starts with): the table alone cannot sign for an endpoint. After a rotation, a secret sealed with an older
key still opens; it is sealed again under the current key when it is next used or changed, and by
`newsdesk keys retire` before the older key goes (at most MAX_WEBHOOKS endpoints: bounded).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from aws_lambda_powertools.metrics import MetricUnit
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from newsdesk.clock import utc_now
from newsdesk.dal.queues import QueuePublisher, ReceivedMessages
from newsdesk.dal.webhook_client import PostOutcome, WebhookClient
from newsdesk.dal.webhooks import MAX_WEBHOOKS, StoredDelivery, StoredWebhook, WebhookRepository
from newsdesk.errors import InvalidInput, NotFound, PreconditionFailed
from newsdesk.models.erasures import Erasure
from newsdesk.models.events import SUBSCRIBER_EVENTS, Event, EventType, PingData, make_event
from newsdesk.models.keys import key_id_of, labelled
from newsdesk.models.webhooks import (
    EVENT_ID_PATTERN,
    WEBHOOK_ID_PATTERN,
    Attempt,
    CreateWebhookRequest,
    DeliveryState,
    DeliveryTask,
    SendAccepted,
    UpdateWebhookRequest,
    Webhook,
    WebhookCreated,
    WebhookDelivery,
)
from newsdesk.observability import logger, metrics
from newsdesk.services.recipients import RecipientKeys
from newsdesk.webhook_targets import HTTPS_ONLY, TargetMode, TargetPorts, TargetRefused, parse_target

if TYPE_CHECKING:
    from newsdesk.services.keys import SigningKeys

RETRY_ATTEMPTS = 12
"""Attempts per delivery (and per replay): the first and eleven retries."""
MAX_RETRY_DELAY = timedelta(hours=12)
"""The longest wait between two attempts (also as long as SQS can hide a message)."""
DISABLE_AFTER = timedelta(days=3)
"""An endpoint with no successful attempt for this long, and failing, is disabled."""
ATTEMPT_LEASE = timedelta(seconds=90)
"""Longer than WebhooksFunction's timeout: a claimed attempt is only taken over once its worker is gone."""
EARLY_TOLERANCE = timedelta(seconds=1)
SIGNATURE_HEADER = "Newsdesk-Signature"
_SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of generated secrets, not one
_NONCE_BYTES = 12
_WEBHOOK_ID = re.compile(WEBHOOK_ID_PATTERN)
_EVENT_ID = re.compile(EVENT_ID_PATTERN)


def retry_delay(attempt: int, base_seconds: int) -> timedelta | None:
    """How long after failed attempt `attempt` (from 1) the next one comes; None after the last."""
    if attempt >= RETRY_ATTEMPTS:
        return None
    return min(MAX_RETRY_DELAY, timedelta(seconds=base_seconds * 2 ** (attempt - 1)))


def retry_schedule(base_seconds: int) -> list[timedelta]:
    """When each attempt of a delivery that keeps failing is made, counted from the first."""
    moments, at = [timedelta(0)], timedelta(0)
    for attempt in range(1, RETRY_ATTEMPTS):
        delay = retry_delay(attempt, base_seconds)
        assert delay is not None
        at += delay
        moments.append(at)
    return moments


# ------------------------------------------------------------------------------------------- signing


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `Newsdesk-Signature` header's value: `t=<timestamp>,v1=<hex HMAC-SHA256 of "<t>.<body>">`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class WebhookSecrets:
    """Makes endpoint secrets, and seals them for storage under the keyring's current signing key."""

    def __init__(self, keys: SigningKeys) -> None:
        self._keys = keys
        self._ciphers: dict[str, AESGCM] = {}

    def _cipher(self, kid: str, key: bytes) -> AESGCM:
        if kid not in self._ciphers:
            self._ciphers[kid] = AESGCM(hmac.new(key, b"newsdesk.webhook-secrets", hashlib.sha256).digest())
        return self._ciphers[kid]

    @staticmethod
    def new_secret() -> str:
        return _SECRET_PREFIX + secrets.token_urlsafe(32)

    def seal(self, webhook_id: str, secret: str) -> str:
        kid, key = self._keys.current
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._cipher(kid, key).encrypt(nonce, secret.encode(), webhook_id.encode())
        return labelled(kid, base64.b64encode(sealed).decode())

    def open(self, webhook_id: str, sealed: str) -> str:
        kid, value = key_id_of(sealed)
        key = self._keys.get(kid) if kid is not None else None
        if kid is None or key is None:
            raise ValueError(f"the webhook's secret cannot be opened: the keyring has no key {kid!r} (retired?)")
        raw = base64.b64decode(value)
        try:
            return self._cipher(kid, key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], webhook_id.encode()).decode()
        except InvalidTag as exc:  # another stack's key (or a record copied between endpoints)
            raise ValueError("the webhook's secret cannot be opened with this stack's signing key") from exc

    def sealed_with_current_key(self, sealed: str) -> bool:
        return key_id_of(sealed)[0] == self._keys.current[0]


def seal_with_current_key(
    repository: WebhookRepository, sealer: WebhookSecrets, stored: StoredWebhook, secret: str | None = None
) -> bool:
    """Seal an endpoint's secret again when an older key sealed it (after a rotation), so that key can be
    retired; whether it was. `secret`: the secret, when the caller opened it already."""
    if sealer.sealed_with_current_key(stored.sealed_secret):
        return False
    webhook_id = stored.webhook.id
    opened = secret if secret is not None else sealer.open(webhook_id, stored.sealed_secret)
    return repository.reseal(webhook_id, stored.sealed_secret, sealer.seal(webhook_id, opened))


def seal_every_secret_with_current_key(repository: WebhookRepository, sealer: WebhookSecrets) -> tuple[int, list[str]]:
    """Every endpoint's secret under the current key (at most MAX_WEBHOOKS endpoints): how many were sealed
    again, and the endpoints no key of the keyring opens any more."""
    resealed, unreadable, cursor = 0, [], None
    while True:
        page, cursor = repository.page(limit=MAX_WEBHOOKS, cursor=cursor)
        for webhook in page:
            stored = repository.get(webhook.id)
            if stored is None:
                continue
            try:
                resealed += seal_with_current_key(repository, sealer, stored)
            except ValueError:
                unreadable.append(webhook.id)
        if cursor is None:
            return resealed, unreadable


# -------------------------------------------------------------------------------------- for editors


def _check_url(url: str, mode: TargetMode, ports: TargetPorts) -> str:
    try:
        parse_target(url, mode, ports=ports)
    except TargetRefused as refused:
        raise InvalidInput(
            f"the webhook URL {refused}", code="invalid_webhook_url", details=[{"loc": ["body", "url"]}]
        ) from refused
    return url


def _task(webhook_id: str, event_id: str, *, round_number: int, attempt: int, due_at: datetime) -> str:
    task = DeliveryTask(webhook_id=webhook_id, event_id=event_id, round=round_number, attempt=attempt, due_at=due_at)
    return task.model_dump_json()


class WebhookService:
    """What editors do with webhooks: register, change, list, test, follow deliveries, replay."""

    def __init__(
        self,
        repository: WebhookRepository,
        *,
        delivery_queue: QueuePublisher,
        secrets: Callable[[], WebhookSecrets],
        mode: TargetMode,
        ports: TargetPorts = HTTPS_ONLY,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._repo = repository
        self._queue = delivery_queue
        self._secrets = secrets
        self._mode = mode
        self._ports = ports
        self._clock = clock

    def create(self, request: CreateWebhookRequest) -> WebhookCreated:
        url = _check_url(request.url, self._mode, self._ports)
        now = self._clock()
        webhook = Webhook(id=f"wh_{secrets.token_hex(8)}", url=url, events=request.events,
                          description=request.description, created_at=now, updated_at=now, version=1)  # fmt: skip
        secret = WebhookSecrets.new_secret()
        self._repo.create(webhook, self._secrets().seal(webhook.id, secret))
        logger.info("webhook created", extra={"webhook_id": webhook.id, "events": [e.value for e in webhook.events]})
        return WebhookCreated(**webhook.model_dump(), secret=secret)

    def get(self, webhook_id: str) -> Webhook:
        stored = self._repo.get(webhook_id) if _WEBHOOK_ID.fullmatch(webhook_id) else None
        if stored is None:
            raise NotFound(f"no webhook {webhook_id!r}")
        return stored.webhook

    def page(self, *, limit: int, cursor: str | None) -> tuple[list[Webhook], str | None]:
        return self._repo.page(limit=limit, cursor=cursor)

    def update(self, webhook_id: str, request: UpdateWebhookRequest, *, if_match: int | None = None) -> Webhook:
        """Change an endpoint as the editor read it: at version `if_match` when given, else at the version read
        here. Any write since (another editor's, a delivery's outcome, the automatic disable) makes this a
        PreconditionFailed, never a silent undo of it."""
        current = self.get(webhook_id)
        if if_match is not None and if_match != current.version:
            raise PreconditionFailed(f"the webhook is at version {current.version}, not {if_match}",
                                     details={"current_version": current.version})  # fmt: skip
        changes = request.model_dump(exclude_unset=True)
        nulls = sorted(name for name in ("url", "events", "enabled") if name in changes and changes[name] is None)
        if nulls:
            raise InvalidInput(f"these fields cannot be null: {', '.join(nulls)}",
                               details=[{"loc": ["body", name]} for name in nulls])  # fmt: skip
        if not changes:
            return current
        if "url" in changes:
            _check_url(changes["url"], self._mode, self._ports)
        now = self._clock()
        update: dict[str, object] = {**changes, "updated_at": now, "version": current.version + 1}
        if changes.get("enabled") is True and not current.enabled:
            # Back on: a fresh start, so the old failures do not disable it again at its next one.
            update.update(disabled_at=None, disabled_reason=None, failing_since=None)
        elif changes.get("enabled") is False and current.enabled:
            update.update(disabled_at=now, disabled_reason="disabled by an editor")
        updated = current.model_copy(update=update)
        self._repo.update(current, updated)
        if (stored := self._repo.get(webhook_id)) is not None:
            seal_with_current_key(self._repo, self._secrets(), stored)
        logger.info("webhook changed", extra={"webhook_id": webhook_id, "fields": sorted(changes)})
        return updated

    def delete(self, webhook_id: str) -> None:
        self._repo.delete(self.get(webhook_id))
        logger.info("webhook deleted", extra={"webhook_id": webhook_id})

    def send_test(self, webhook_id: str) -> SendAccepted:
        """Queue a `ping` to the endpoint (disabled or not: this is how an editor checks it works again)."""
        webhook = self.get(webhook_id)
        now = self._clock()
        event = make_event(EventType.PING, secrets.token_hex(16), now, PingData(webhook_id=webhook.id))
        self._repo.add_delivery(webhook.id, event_id=event.id, kind=event.type, body=event.body(), now=now,
                                explicit=True)  # fmt: skip
        self._queue.send([_task(webhook.id, event.id, round_number=1, attempt=1, due_at=now)])
        return SendAccepted(event_id=event.id)

    def deliveries(
        self, webhook_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[WebhookDelivery], str | None]:
        self.get(webhook_id)
        return self._repo.deliveries(webhook_id, limit=limit, cursor=cursor)

    def replay(self, webhook_id: str, event_id: str) -> SendAccepted:
        """Send a delivery again: the same body and id, a new round of attempts."""
        webhook = self.get(webhook_id)
        stored = self._repo.delivery(webhook.id, event_id) if _EVENT_ID.fullmatch(event_id) else None
        if stored is None:
            raise NotFound(f"no delivery of event {event_id!r} to this webhook")
        now = self._clock()
        round_number = self._repo.start_round(webhook.id, stored, now=now)
        self._queue.send([_task(webhook.id, event_id, round_number=round_number, attempt=1, due_at=now)])
        logger.info("delivery replayed", extra={"webhook_id": webhook.id, "event_id": event_id})
        return SendAccepted(event_id=event_id)


# -------------------------------------------------------------------------------------------- dispatch


class WebhookDispatch:
    """Offers each event from the bus to the endpoints that asked for its type."""

    def __init__(
        self,
        repository: WebhookRepository,
        *,
        delivery_queue: QueuePublisher,
        recipient_keys: Callable[[], RecipientKeys],
        tombstones: Callable[[Iterable[str]], Mapping[str, Erasure]],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._repo = repository
        self._queue = delivery_queue
        self._recipient_keys = recipient_keys
        self._tombstones = tombstones
        self._clock = clock

    def dispatch(self, events: Sequence[Event]) -> int:
        """Record and queue a delivery per (event, interested enabled endpoint); how many were queued. Safe to
        repeat: an event offered before is not offered again (unless its first attempt was never queued). An
        event about a person erased since is dropped: neither stored nor sent."""
        events = self._without_erased(events)
        wanted = self._repo.subscribers_of({event.type for event in events if event.type is not EventType.PING})
        endpoints = self._repo.endpoints(webhook_id for ids in wanted.values() for webhook_id in ids)
        now = self._clock()
        tasks: list[str] = []
        for event in events:
            for webhook_id in wanted.get(event.type, []):
                webhook = endpoints.get(webhook_id)
                if webhook is None or not webhook.enabled or event.type not in webhook.events:
                    continue
                if self._offer(webhook.id, event, now):
                    tasks.append(_task(webhook.id, event.id, round_number=1, attempt=1, due_at=now))
        self._queue.send(tasks)
        if tasks:
            logger.info("deliveries queued", extra={"events": len(events), "deliveries": len(tasks)})
        return len(tasks)

    def _without_erased(self, events: Sequence[Event]) -> list[Event]:
        subjects = {event.id: self._subject(event) for event in events}
        about = {event_id: subject for event_id, subject in subjects.items() if subject is not None}
        erased = self._tombstones(about.values()) if about else {}
        kept = []
        for event in events:
            erasure = erased.get(about.get(event.id, ""))
            # A change made after the erasure finished is a new subscription's (the address signed up again).
            if erasure is not None and (erasure.finished_at is None or event.created_at <= erasure.finished_at):
                logger.info("event about an erased person dropped", extra={"event_id": event.id})
                continue
            kept.append(event)
        return kept

    def _subject(self, event: Event) -> str | None:
        """The recipient key of the person a subscriber event is about (None for other events)."""
        if event.type in SUBSCRIBER_EVENTS and event.data.get("email"):
            return self._recipient_keys().of(str(event.data["email"]))
        return None

    def _offer(self, webhook_id: str, event: Event, now: datetime) -> bool:
        """Whether a first attempt is to be queued."""
        # So that erasing the person finds this body (a keyed hash, never the address itself).
        subject = self._subject(event)
        if self._repo.add_delivery(webhook_id, event_id=event.id, kind=event.type, body=event.body(), now=now,
                                   subject=subject):  # fmt: skip
            return True
        # Offered before. If that dispatch stopped between recording the delivery and queueing its first
        # attempt, nothing was tried yet: queue it (a duplicate attempt is refused by its claim).
        stored = self._repo.delivery(webhook_id, event.id)
        return stored is not None and stored.round == 1 and stored.tries == 0 and not stored.delivery.attempts


# ---------------------------------------------------------------------------------------------- attempts


@dataclass(frozen=True)
class ReceivedTask:
    task: DeliveryTask
    receipt_handle: str


class WebhookSender:
    """Makes the attempts: one POST per task, the outcome recorded, the next attempt queued."""

    def __init__(
        self,
        repository: WebhookRepository,
        *,
        client: WebhookClient,
        delivery_queue: QueuePublisher,
        received: ReceivedMessages,
        secrets: Callable[[], WebhookSecrets],
        retry_base_seconds: int,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._repo = repository
        self._client = client
        self._queue = delivery_queue
        self._received = received
        self._secrets = secrets
        self._retry_base = retry_base_seconds
        self._clock = clock

    def run(self, tasks: Sequence[ReceivedTask]) -> list[ReceivedTask]:
        """Attempt every task at once (each waits on a different receiver); the tasks that must come back
        later (not due yet), which the caller reports as failed so the queue keeps them."""
        with ThreadPoolExecutor(max_workers=max(1, len(tasks))) as pool:
            done = list(pool.map(self.attempt, tasks))
        return [task for task, finished in zip(tasks, done, strict=True) if not finished]

    def attempt(self, received: ReceivedTask) -> bool:
        """Make the task's attempt if it is due; False when it was put back until it is."""
        task, now = received.task, self._clock()
        stored = self._repo.delivery(task.webhook_id, task.event_id)
        if stored is None or stored.round != task.round or stored.delivery.state is not DeliveryState.PENDING:
            return True  # replayed since, finished, or expired: this task is stale
        if stored.tries >= task.attempt:
            self._requeue_next(task, stored)
            return True
        if task.due_at - now > EARLY_TOLERANCE:
            # SQS delays a message 15 minutes at most: a longer wait is the rest of it, hidden in the queue.
            self._received.postpone(received.receipt_handle, math.ceil((task.due_at - now).total_seconds()))
            return False
        if not self._repo.claim_attempt(task.webhook_id, task.event_id, round_number=task.round,
                                        attempt=task.attempt, now=now, lease=ATTEMPT_LEASE):  # fmt: skip
            return True  # made already, or being made by another worker (whose message stays until it is)
        found = self._repo.get(task.webhook_id)
        if found is None:
            self._repo.give_up(task.webhook_id, stored, reason="the webhook was deleted", now=now)
            return True
        if not found.webhook.enabled and not stored.explicit:
            self._repo.give_up(task.webhook_id, stored, reason="the webhook is disabled", now=now)
            return True
        sealer = self._secrets()
        secret = sealer.open(found.webhook.id, found.sealed_secret)
        seal_with_current_key(self._repo, sealer, found, secret)
        body = stored.body.encode()
        event_type = stored.delivery.type.value
        headers = {
            "Newsdesk-Event-Id": stored.delivery.event_id,
            "Newsdesk-Event-Type": event_type,
            "Newsdesk-Attempt": str(stored.delivery.attempt + 1),
            SIGNATURE_HEADER: signature(secret, int(now.timestamp()), body),
        }
        outcome = self._client.post(found.webhook.url, body, headers)
        self._record(task, stored, outcome, now)
        return True

    def _record(self, task: DeliveryTask, stored: StoredDelivery, outcome: PostOutcome, now: datetime) -> None:
        result = Attempt(attempt=stored.delivery.attempt + 1, at=now, status_code=outcome.status_code,
                         error=outcome.error or (None if outcome.succeeded else "the answer was not 2xx"),
                         duration_ms=outcome.duration_ms)  # fmt: skip
        delay = None if outcome.succeeded else retry_delay(task.attempt, self._retry_base)
        if outcome.succeeded:
            state = DeliveryState.SUCCEEDED
        else:
            state = DeliveryState.PENDING if delay is not None else DeliveryState.FAILED
        next_retry_at = now + delay if delay is not None else None
        log = {"webhook_id": task.webhook_id, "event_id": task.event_id, "attempt": result.attempt,
               "status_code": outcome.status_code, "state": state.value}  # fmt: skip
        if not self._repo.record_attempt(task.webhook_id, stored, attempt=task.attempt, result=result, state=state,
                                         next_retry_at=next_retry_at):  # fmt: skip
            logger.info("attempt made while the delivery was replayed; its outcome is not kept", extra=log)
            return
        logger.info("webhook attempt", extra={**log, "error": result.error})
        if next_retry_at is not None:
            self._queue.send(
                [_task(task.webhook_id, task.event_id, round_number=task.round, attempt=task.attempt + 1,
                       due_at=next_retry_at)],
                delay_seconds=math.ceil((next_retry_at - now).total_seconds()),
            )  # fmt: skip
        metrics.add_metric(
            name="WebhookAttemptsSucceeded" if outcome.succeeded else "WebhookAttemptsFailed",
            unit=MetricUnit.Count,
            value=1,
        )
        self._health(task.webhook_id, outcome.succeeded, now)

    def _health(self, webhook_id: str, succeeded: bool, now: datetime) -> None:
        if succeeded:
            self._repo.record_success(webhook_id, now)
            return
        webhook = self._repo.record_failure(webhook_id, now)
        if webhook is None or not webhook.enabled or webhook.failing_since is None:
            return
        if now - webhook.failing_since >= DISABLE_AFTER:
            reason = f"no delivery succeeded since {webhook.failing_since.isoformat(timespec='seconds')}"
            if self._repo.disable(webhook, reason, now):
                metrics.add_metric(name="WebhooksDisabled", unit=MetricUnit.Count, value=1)
                logger.warning("webhook disabled: it kept failing", extra={"webhook_id": webhook_id})

    def _requeue_next(self, task: DeliveryTask, stored: StoredDelivery) -> None:
        """This attempt was made and recorded, but its worker may have stopped before queueing the next."""
        retry_at = stored.delivery.next_retry_at
        if stored.tries == task.attempt and retry_at is not None:
            self._queue.send(
                [_task(task.webhook_id, task.event_id, round_number=task.round, attempt=task.attempt + 1,
                       due_at=retry_at)],
                delay_seconds=math.ceil((retry_at - self._clock()).total_seconds()),
            )  # fmt: skip
