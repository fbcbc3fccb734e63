"""Subscriber import from an uploaded CSV export (Mailchimp, Substack, Ghost and the like).

The S3 event checks the file (`check`) and runs its first chunk; later chunks run from the import queue.
A chunk reads the file from the start, skips to its first row, and adds rows in batches until the file
ends or the invocation's time runs short, saving the progress after each batch (conditional on the row
it started from, so a redelivered chunk cannot count twice); then it queues its continuation. Addresses
imported as pending get their confirmation email from the confirmation queue, at the SES rate.
"""

from __future__ import annotations

import csv
import io
import itertools
import time
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import ValidationError

from newsdesk.clock import utc_now
from newsdesk.dal.queues import QueuePublisher
from newsdesk.dal.subscribers import ImportResult, SubscriberRepository
from newsdesk.dal.uploads import StoredObject, UploadObjects, UploadRepository
from newsdesk.errors import SendThrottled, ServiceBusy, UploadRejected, validation_message
from newsdesk.models.subscribers import Consent, ConsentSource, Subscriber, SubscribeRequest, SubscriberStatus
from newsdesk.models.uploads import (
    MAX_ROW_NOTES,
    ConfirmationBatch,
    ImportChunk,
    ImportedRecipient,
    ObjectUpload,
    RowNote,
    Upload,
    UploadOutcome,
)
from newsdesk.observability import logger
from newsdesk.redaction import without_addresses
from newsdesk.services.pacing import RateLimiter, backoff_delay
from newsdesk.services.subscriptions import SubscriptionService

MAX_CSV_BYTES = 50 * 1024 * 1024
"""About a million rows of a typical export; larger lists can be split into several files."""
FIRST_DATA_ROW = 2
"""Rows are numbered as a spreadsheet shows them: the header is row 1."""
ROWS_PER_BATCH = 250
"""Rows written between two progress saves; a batch takes well under a second."""
IMPORT_WORKERS = 10
"""Parallel conditional writes; botocore's default connection pool holds ten."""
SAFETY_MARGIN_SECONDS = 30.0
"""Time kept in hand when a chunk stops, to save its progress and queue its continuation."""
STALLED_AFTER = timedelta(minutes=15)
"""An import whose progress has not moved for this long has lost its chain. Between the function's
timeout (5 minutes) and the queue's visibility timeout (30): a chunk redelivered after a crash always
finds its import stalled, a stray copy of a chunk never restarts a chain that is alive."""
CONFIRMATIONS_PER_MESSAGE = 50
CONFIRMATION_MARGIN_SECONDS = 10.0

_EMAIL = frozenset({"email", "email address", "e-mail", "e-mail address"})
_NAME = frozenset({"name", "full name"})
_FIRST_NAME = frozenset({"first name", "firstname"})
_LAST_NAME = frozenset({"last name", "lastname"})
_FREQUENCY = frozenset({"frequency"})


def _column_name(header: str) -> str:
    return " ".join(header.replace("_", " ").lower().split())


@dataclass(frozen=True)
class Columns:
    """Where the fields are, from the header row; names are matched ignoring case, spaces and `_`."""

    email: int
    name: int | None = None
    first_name: int | None = None
    last_name: int | None = None
    frequency: int | None = None

    @classmethod
    def from_header(cls, header: Sequence[str]) -> Columns:
        names = [_column_name(cell) for cell in header]

        def find(wanted: frozenset[str]) -> int | None:
            return next((index for index, name in enumerate(names) if name in wanted), None)

        email = find(_EMAIL)
        if email is None:
            raise UploadRejected("the header row has no email column (email or Email Address)")
        return cls(email, find(_NAME), find(_FIRST_NAME), find(_LAST_NAME), find(_FREQUENCY))

    def request(self, cells: Sequence[str]) -> SubscribeRequest:
        def cell(index: int | None) -> str:
            return cells[index].strip() if index is not None and index < len(cells) else ""

        name = cell(self.name) or " ".join(filter(None, (cell(self.first_name), cell(self.last_name))))
        fields: dict[str, str] = {"email": cell(self.email)}
        if name:
            fields["name"] = name
        if cell(self.frequency):
            fields["frequency"] = cell(self.frequency).lower()
        return SubscribeRequest.model_validate(fields)


def _reason(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    # Kept on the upload's record for months: the row number says which row, the address need not.
    message = without_addresses(validation_message(first))
    return f"{where}: {message}" if where else message


@dataclass
class _Batch:
    """What one batch of rows came to."""

    imported: int = 0
    skipped: list[RowNote] = field(default_factory=list)
    invalid: list[RowNote] = field(default_factory=list)
    to_confirm: list[ImportedRecipient] = field(default_factory=list)


def _rows(stored: StoredObject) -> Generator[list[str], None, None]:
    """The CSV's records, header first, decoded as UTF-8 (with or without a byte-order mark)."""
    with io.TextIOWrapper(stored.body, encoding="utf-8-sig", newline="") as text:
        yield from csv.reader(text)


class SubscriberImporter:
    def __init__(
        self,
        *,
        uploads: UploadRepository,
        objects: UploadObjects,
        subscribers: SubscriberRepository,
        subscriptions: SubscriptionService,
        chunks: QueuePublisher,
        confirmations: QueuePublisher,
        confirmation_rate: float,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._uploads = uploads
        self._objects = objects
        self._subscribers = subscribers
        self._subscriptions = subscriptions
        self._chunks = chunks
        self._confirmations = confirmations
        self._clock = clock
        self._sleep = sleep
        # Per process, so the pace holds across invocations of a warm function.
        self._limiter = RateLimiter(confirmation_rate)
        self._pool = ThreadPoolExecutor(max_workers=IMPORT_WORKERS, thread_name_prefix="import")

    # ------------------------------------------------------------------ the S3 event
    def check(self, upload: ObjectUpload) -> int:
        """Read the whole file once: it must be UTF-8 CSV with an email column. Returns its data rows."""
        if upload.size is not None and upload.size > MAX_CSV_BYTES:
            raise UploadRejected(f"the file is {upload.size} bytes; the limit is {MAX_CSV_BYTES}")
        stored = self._open(upload.bucket, upload.key, upload.version_id, upload.etag)
        if stored.size > MAX_CSV_BYTES:
            stored.body.close()
            raise UploadRejected(f"the file is {stored.size} bytes; the limit is {MAX_CSV_BYTES}")
        rows = 0
        try:
            with closing(_rows(stored)) as records:
                header = next(records, None)
                if header is None:
                    raise UploadRejected("the file is empty")
                Columns.from_header(header)
                for _ in records:
                    rows += 1
        except UnicodeDecodeError as exc:
            raise UploadRejected(
                f"the file is not UTF-8 text (after row {rows + 1}); export or save it as CSV UTF-8"
            ) from exc
        except csv.Error as exc:
            raise UploadRejected(f"row {rows + FIRST_DATA_ROW} is not valid CSV: {exc}") from exc
        return rows

    # ------------------------------------------------------------------ the import queue
    def run_chunk(self, task: ImportChunk, *, seconds_left: Callable[[], float]) -> None:
        upload = self._uploads.get(task.upload_id)
        if upload is None or upload.outcome is not UploadOutcome.IMPORTING or upload.next_row is None:
            logger.info("import chunk for a finished import dropped", extra={"upload_id": task.upload_id})
            return
        if task.start_row != upload.next_row:
            if task.start_row < upload.next_row and upload.updated_at < self._clock() - STALLED_AFTER:
                # This chunk saved progress further on, then died before queueing its continuation.
                self._queue_chunk(upload, task.bucket, task.version_id, task.etag)
            return  # otherwise a copy of a chunk that was done, or is being done, elsewhere
        stored = self._objects.open(task.bucket, task.key, version_id=task.version_id, etag=task.etag)
        if stored is None:
            reason = "the file was deleted or replaced before the import finished"
            finished = upload.model_copy(update={"outcome": UploadOutcome.REJECTED, "reason": reason, "next_row": None})
            self._uploads.save_progress(finished, expected_next_row=upload.next_row)
            return
        with closing(_rows(stored)) as records:
            columns = Columns.from_header(next(records))
            numbered = enumerate(records, start=FIRST_DATA_ROW)
            # Re-reading up to the first row costs far less than the writes; S3 ranges would need byte offsets.
            remaining = itertools.dropwhile(lambda pair: pair[0] < task.start_row, numbered)
            while True:
                assert upload.next_row is not None
                batch = list(itertools.islice(remaining, ROWS_PER_BATCH))
                done = len(batch) < ROWS_PER_BATCH
                outcome = self._import_batch(upload, columns, batch)
                # Queued before the progress is saved: a crash in between queues an address twice, but
                # it is asked once (the claim is once per import), and never left unasked.
                self._queue_confirmations(upload.id, outcome.to_confirm, key=upload.key)
                next_row = batch[-1][0] + 1 if batch else upload.next_row
                progress = self._progress(upload, outcome, next_row=next_row, done=done)
                if not self._uploads.save_progress(progress, expected_next_row=upload.next_row):
                    logger.info("import chunk already done elsewhere", extra={"upload_id": upload.id})
                    return
                upload = progress
                if done:
                    logger.info(
                        "subscribers imported",
                        extra={"upload_id": upload.id, "imported": upload.imported, "invalid": upload.invalid},
                    )
                    return
                if seconds_left() < SAFETY_MARGIN_SECONDS:
                    self._queue_chunk(upload, task.bucket, task.version_id, task.etag)
                    logger.info("import continues", extra={"upload_id": upload.id, "next_row": upload.next_row})
                    return

    def send_confirmations(self, task: ConfirmationBatch, *, seconds_left: Callable[[], float]) -> None:
        """Ask each address to confirm, at the configured rate; what time does not allow is queued again."""
        remaining = list(task.recipients)
        attempt = 0
        while remaining:
            if seconds_left() < CONFIRMATION_MARGIN_SECONDS:
                self._queue_confirmations(task.upload_id, remaining, key=task.key)
                return
            self._limiter.acquire()
            recipient = remaining[0]
            try:
                self._subscriptions.confirm_imported(recipient.email, task.upload_id, object_key=task.key)
            except (SendThrottled, ServiceBusy):
                # Not failing the message: its redelivery would come only after the visibility timeout
                # (it would not ask anyone twice either: each address is claimed once per import).
                self._sleep(backoff_delay(attempt))
                attempt += 1
                continue
            attempt = 0
            remaining.pop(0)

    # ------------------------------------------------------------------ rows
    def _import_batch(self, upload: Upload, columns: Columns, batch: list[tuple[int, list[str]]]) -> _Batch:
        outcome = _Batch()
        now = self._clock()
        status = SubscriberStatus.CONFIRMED if upload.confirmed else SubscriberStatus.PENDING
        first_row: dict[str, int] = {}
        candidates: list[tuple[int, Subscriber]] = []
        for row, cells in batch:
            if not any(cell.strip() for cell in cells):
                continue  # a blank line, such as the one many tools leave at the end
            try:
                request = columns.request(cells)
            except ValidationError as exc:
                outcome.invalid.append(RowNote(row=row, reason=_reason(exc)))
                continue
            if request.email in first_row:
                outcome.skipped.append(RowNote(row=row, reason=f"repeats row {first_row[request.email]}"))
                continue
            first_row[request.email] = row
            candidates.append(
                (
                    row,
                    Subscriber(
                        email=request.email,
                        name=request.name,
                        frequency=request.frequency,
                        status=status,
                        created_at=now,
                        updated_at=now,
                        confirmed_at=now if upload.confirmed else None,
                        # Who vouched: the uploaded file (under subscribers/confirmed/, the editor who put it
                        # there vouches for consent given elsewhere).
                        consent=Consent(
                            source=ConsentSource.IMPORT,
                            requested_at=now,
                            confirmed_at=now if upload.confirmed else None,
                            object_key=upload.key,
                        ),
                    ),
                )
            )

        def add(candidate: tuple[int, Subscriber]) -> tuple[ImportResult, int | None]:
            row, subscriber = candidate
            return self._subscribers.create_imported(subscriber, upload_id=upload.id, row=row)

        for (row, subscriber), (result, earlier) in zip(candidates, self._pool.map(add, candidates), strict=True):
            if result is ImportResult.ADDED:
                outcome.imported += 1
                if not upload.confirmed:
                    outcome.to_confirm.append(
                        ImportedRecipient(email=subscriber.email, name=subscriber.name, frequency=subscriber.frequency)
                    )
            elif result is ImportResult.REPEATED:
                outcome.skipped.append(RowNote(row=row, reason=f"repeats row {earlier}"))
            else:
                outcome.skipped.append(RowNote(row=row, reason="already on the list"))
        return outcome

    def _progress(self, upload: Upload, outcome: _Batch, *, next_row: int | None, done: bool) -> Upload:
        invalid_rows = [*(upload.invalid_rows or []), *outcome.invalid][:MAX_ROW_NOTES]
        skipped_rows = [*(upload.skipped_rows or []), *outcome.skipped][:MAX_ROW_NOTES]
        return upload.model_copy(
            update={
                "imported": (upload.imported or 0) + outcome.imported,
                "skipped": (upload.skipped or 0) + len(outcome.skipped),
                "invalid": (upload.invalid or 0) + len(outcome.invalid),
                "invalid_rows": invalid_rows,
                "skipped_rows": skipped_rows,
                "next_row": None if done else next_row,
                "outcome": UploadOutcome.IMPORTED if done else UploadOutcome.IMPORTING,
                "updated_at": self._clock(),
            }
        )

    # ------------------------------------------------------------------ queue and bucket
    def _queue_chunk(self, upload: Upload, bucket: str, version_id: str | None, etag: str | None) -> None:
        assert upload.next_row is not None
        chunk = ImportChunk(
            upload_id=upload.id,
            bucket=bucket,
            key=upload.key,
            version_id=version_id,
            etag=etag or "",
            start_row=upload.next_row,
        )
        self._chunks.send([chunk.model_dump_json()])

    def _queue_confirmations(self, upload_id: str, recipients: Sequence[ImportedRecipient], *, key: str | None) -> None:
        messages = [
            ConfirmationBatch(
                upload_id=upload_id, key=key, recipients=list(recipients[start : start + CONFIRMATIONS_PER_MESSAGE])
            ).model_dump_json()
            for start in range(0, len(recipients), CONFIRMATIONS_PER_MESSAGE)
        ]
        if messages:
            self._confirmations.send(messages)

    def _open(self, bucket: str, key: str, version_id: str | None, etag: str) -> StoredObject:
        stored = self._objects.open(bucket, key, version_id=version_id, etag=etag)
        if stored is None:
            raise UploadRejected("the file was deleted or replaced before it could be read")
        return stored
