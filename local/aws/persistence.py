"""NEWSDESK_STATE_DIR: the local stack's data kept across restarts (moto keeps everything in memory only).

What a token, an article and a subscriber need to survive is saved to one JSON file in that folder: every
table's items, every bucket's objects (each version, and delete markers), the messages waiting in every
queue of the template, and the secrets (the signing secret: links, tokens in emails and the ledger's keys
depend on it), plus the stack's own editor token. It is written when the stack stops and every
SAVE_INTERVAL_SECONDS while it runs (only when something changed), so a crash loses little, and read back
when the stack starts, after its resources exist and before any function runs or any event source polls:
the restored writes produce no stream records or S3 events that anything reads, and the queues' messages
are delivered as they would have been.

Not kept: the outbox (sent emails), S3 version ids (the versions are written again, so they get new ids),
the messages' receive counts and visibility, moto's IAM credentials of the functions (made anew each start).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moto.dynamodb.models import dynamodb_backends
from moto.sqs.models import sqs_backends

from local.aws.embedded import client
from local.aws.moto_fixes import dynamodb_requests_lock
from local.template.model import BUCKET, QUEUE, SECRET, TABLE, Resource
from local.template.resolver import Resolver

log = logging.getLogger(__name__)

STATE_VARIABLE = "NEWSDESK_STATE_DIR"
SNAPSHOT_NAME = "snapshot.json"
SNAPSHOT_FORMAT = 1
SAVE_INTERVAL_SECONDS = 30.0


class StateFolderError(RuntimeError):
    """The saved state cannot be read back, or another stack uses the folder: this stack does not start,
    rather than overwrite it."""


@dataclass(frozen=True)
class Restored:
    """What a start found in the state folder."""

    saved_at: str | None
    items: int
    objects: int
    messages: int

    def describe(self) -> str:
        if self.saved_at is None:
            return "nothing saved yet"
        return (
            f"{self.items} items, {self.objects} object versions and {self.messages} queued messages"
            f" saved at {self.saved_at}"
        )


class StateFolder:
    """The local stack's data in a folder: `restore` once after the resources are created, then `save`."""

    def __init__(self, folder: Path, resolver: Resolver, endpoint: str) -> None:
        self.folder = folder
        self.resolver = resolver
        self.endpoint = endpoint
        self.path = folder / SNAPSHOT_NAME
        self.dev_token: str | None = None
        """The editor token the stack printed when the state was saved (reused, so it stays the same)."""
        self._restored = False
        self._last_digest: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._saver: threading.Thread | None = None
        self._lock_descriptor: int | None = None
        self._clients: dict[str, Any] = {}

    # ------------------------------------------------------------------------------------------ restore

    def restore(self) -> Restored:
        """Put the saved data back into the (new, empty) resources; StateFolderError if it cannot be read."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock_folder()
        snapshot = self._read()
        self._restored = True
        if snapshot is None:
            return Restored(None, 0, 0, 0)
        self.dev_token = snapshot.get("dev_token")
        items = sum(self._put_items(logical_id, rows) for logical_id, rows in self._known(snapshot, "tables", TABLE))
        objects = sum(
            self._put_objects(logical_id, versions) for logical_id, versions in self._known(snapshot, "buckets", BUCKET)
        )
        messages = sum(
            self._send_messages(logical_id, queued) for logical_id, queued in self._known(snapshot, "queues", QUEUE)
        )
        for logical_id, value in self._known(snapshot, "secrets", SECRET):
            self._client("secretsmanager").put_secret_value(
                SecretId=self.resolver.get_att(logical_id, "Arn"), SecretString=value
            )
        self._last_digest = _digest(self._without_time(snapshot))
        return Restored(str(snapshot.get("saved_at")), items, objects, messages)

    def _lock_folder(self) -> None:
        # Two stacks saving to one folder would each overwrite the other's data: the second one is refused.
        # The lock lasts as long as this process (the kernel releases it however the process ends).
        descriptor = os.open(self.folder / "lock", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(descriptor)
            raise StateFolderError(f"another running local stack keeps its data in {self.folder}") from error
        self._lock_descriptor = descriptor

    def _read(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StateFolderError(f"cannot read {self.path}: {error}") from error
        try:
            snapshot = json.loads(text)
        except ValueError as error:
            raise StateFolderError(f"{self.path} is not the JSON this stack writes ({error})") from error
        if not isinstance(snapshot, dict) or snapshot.get("format") != SNAPSHOT_FORMAT:
            raise StateFolderError(f"{self.path} is not a format {SNAPSHOT_FORMAT} snapshot of the local stack")
        return snapshot

    def _known(self, snapshot: dict[str, Any], section: str, resource_type: str) -> Iterator[tuple[str, Any]]:
        """The saved entries of resources the template (still) creates; the others are named and skipped."""
        created = {resource.logical_id for resource in self._created(resource_type)}
        for logical_id, value in (snapshot.get(section) or {}).items():
            if logical_id in created:
                yield logical_id, value
            else:
                log.warning("%s: the template has no %s %s any more; its saved data is left out", self.path,
                            resource_type, logical_id)  # fmt: skip

    def _put_items(self, logical_id: str, rows: list[dict[str, Any]]) -> int:
        # Straight into moto, as PutItem hands it over (BatchWriteItem over HTTP made a restart wait 20 seconds
        # for 10,000 subscribers).
        backend, table = self._dynamodb(), self.resolver.physical_name(logical_id)
        with dynamodb_requests_lock():
            for row in rows:
                backend.put_item(table, _decoded(row))
        return len(rows)

    def _put_objects(self, logical_id: str, versions: list[dict[str, Any]]) -> int:
        s3, bucket = self._client("s3"), self.resolver.physical_name(logical_id)
        for version in versions:  # oldest first: each key's history is written again in its order
            if version.get("delete_marker"):
                s3.delete_object(Bucket=bucket, Key=version["key"])
                continue
            s3.put_object(
                Bucket=bucket,
                Key=version["key"],
                Body=base64.b64decode(version["body"]),
                ContentType=version.get("content_type") or "binary/octet-stream",
                Metadata=version.get("metadata") or {},
            )
        return len(versions)

    def _send_messages(self, logical_id: str, queued: list[dict[str, Any]]) -> int:
        sqs, url = self._client("sqs"), self._queue_url(logical_id)
        for start in range(0, len(queued), 10):
            entries = []
            for index, message in enumerate(queued[start : start + 10]):
                entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["body"]}
                if message.get("attributes"):
                    entry["MessageAttributes"] = _decoded_attributes(message["attributes"])
                if message.get("group_id"):
                    entry["MessageGroupId"] = message["group_id"]
                if message.get("deduplication_id"):
                    entry["MessageDeduplicationId"] = message["deduplication_id"]
                entries.append(entry)
            failed = sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed") or []
            if failed:
                raise StateFolderError(f"the saved messages of {logical_id} were refused: {failed}")
        return len(queued)

    # --------------------------------------------------------------------------------------------- save

    def save(self) -> bool:
        """Write the stack's data to the folder (whole or not at all), unless nothing changed since the last
        save; never before `restore`, which would replace the saved data with an empty stack."""
        if not self._restored:
            return False
        with self._lock:
            snapshot = self._snapshot()
            digest = _digest(snapshot)
            if digest == self._last_digest:
                return False
            snapshot |= {"saved_at": datetime.now(UTC).isoformat(timespec="seconds")}
            temporary = self.path.with_name(f".{SNAPSHOT_NAME}.{os.getpid()}")
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                json.dump(snapshot, file, separators=(",", ":"))
                file.flush()
                os.fsync(file.fileno())
            temporary.replace(self.path)
            self._last_digest = digest
            return True

    def keep_saving(self, interval: float = SAVE_INTERVAL_SECONDS) -> None:
        """Save every `interval` seconds in the background until `stop`."""

        def run() -> None:
            while not self._stop.wait(interval):
                try:
                    self.save()
                except Exception:  # a hiccup of the embedded AWS: the next round (or the stop) saves
                    log.exception("could not save the local stack's data to %s", self.path)

        self._saver = threading.Thread(target=run, name="state-saver", daemon=True)
        self._saver.start()

    def stop(self) -> None:
        """Stop saving in the background (the caller saves once more when everything else has stopped)."""
        self._stop.set()
        if self._saver is not None:
            self._saver.join(30)

    def close(self) -> None:
        """Let another stack use the folder (the stack's last save is done)."""
        self.stop()
        if self._lock_descriptor is not None:
            os.close(self._lock_descriptor)  # closing the file releases its lock
            self._lock_descriptor = None

    def _snapshot(self) -> dict[str, Any]:
        return {
            "format": SNAPSHOT_FORMAT,
            "dev_token": self.dev_token,
            "tables": {resource.logical_id: self._items(resource) for resource in self._created(TABLE)},
            "buckets": {resource.logical_id: self._objects(resource) for resource in self._created(BUCKET)},
            "queues": {resource.logical_id: self._messages(resource) for resource in self._created(QUEUE)},
            "secrets": {resource.logical_id: self._secret(resource) for resource in self._created(SECRET)},
        }

    def _items(self, table: Resource) -> list[dict[str, Any]]:
        # Read from moto between two requests (a Scan over HTTP took seconds for 10,000 items, at every save).
        found = self._dynamodb().tables.get(self.resolver.physical_name(table.logical_id))
        if found is None:
            return []
        with dynamodb_requests_lock():
            return [_encoded(item.to_json()["Attributes"]) for item in found.all_items()]

    def _objects(self, bucket: Resource) -> list[dict[str, Any]]:
        s3, name = self._client("s3"), self.resolver.physical_name(bucket.logical_id)
        by_key: dict[str, list[tuple[tuple[bool, Any, int], dict[str, Any]]]] = {}
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
            for kind in ("DeleteMarkers", "Versions"):
                for found in page.get(kind) or []:
                    versions = by_key.setdefault(found["Key"], [])
                    # Oldest first: by time, then (S3 lists a key's versions newest first, and several may
                    # share a second) against the listing, with the current version or marker last.
                    order = (bool(found.get("IsLatest")), found["LastModified"], -len(versions))
                    versions.append((order, {"delete_marker": kind == "DeleteMarkers", **found}))
        saved = []
        for key, versions in by_key.items():
            for _, version in sorted(versions, key=lambda entry: entry[0]):
                if version["delete_marker"]:
                    saved.append({"key": key, "delete_marker": True})
                    continue
                version_id = version.get("VersionId")
                extra = {"VersionId": version_id} if version_id not in (None, "null") else {}
                answer = s3.get_object(Bucket=name, Key=key, **extra)
                saved.append(
                    {
                        "key": key,
                        "body": base64.b64encode(answer["Body"].read()).decode(),
                        "content_type": answer.get("ContentType"),
                        "metadata": answer.get("Metadata") or {},
                    }
                )
        return saved

    def _messages(self, queue: Resource) -> list[dict[str, Any]]:
        # Read from moto in this process: receiving them over the API would change them (receive counts,
        # visibility), and would miss those a function holds. Oldest first.
        name = self.resolver.physical_name(queue.logical_id)
        backend = sqs_backends[self.resolver.account_id][self.resolver.region]
        found = backend.queues.get(name)
        if found is None:
            return []
        with found._messages_lock:
            waiting = list(found._messages)
        return [
            {
                "body": message.body,
                "attributes": _encoded_attributes(message.message_attributes),
                "group_id": message.group_id,
                "deduplication_id": message.deduplication_id,
            }
            for message in waiting
        ]

    def _secret(self, secret: Resource) -> str:
        answer = self._client("secretsmanager").get_secret_value(SecretId=self.resolver.get_att(secret.logical_id,
                                                                                               "Arn"))  # fmt: skip
        return str(answer["SecretString"])

    # ------------------------------------------------------------------------------------------ helpers

    def _created(self, resource_type: str) -> list[Resource]:
        return [
            resource
            for resource in self.resolver.template.of_type(resource_type)
            if not resource.condition or self.resolver.condition(resource.condition)
        ]

    def _client(self, service: str) -> Any:
        if service not in self._clients:  # made once: a save every half minute would make each again
            self._clients[service] = client(service, self.endpoint, self.resolver.region)
        return self._clients[service]

    def _dynamodb(self) -> Any:
        return dynamodb_backends[self.resolver.account_id][self.resolver.region]

    def _queue_url(self, logical_id: str) -> str:
        return str(self._client("sqs").get_queue_url(QueueName=self.resolver.physical_name(logical_id))["QueueUrl"])

    @staticmethod
    def _without_time(snapshot: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in snapshot.items() if key != "saved_at"}


def state_folder(resolver: Resolver, endpoint: str) -> StateFolder | None:
    """The folder NEWSDESK_STATE_DIR names, or None: then nothing is written to disk."""
    folder = os.environ.get(STATE_VARIABLE, "").strip()
    return StateFolder(Path(folder).expanduser(), resolver, endpoint) if folder else None


def _digest(snapshot: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(snapshot, sort_keys=True, default=str).encode()).hexdigest()


# DynamoDB's binary values (B, BS) are bytes in moto and base64 in JSON: the type tags say which is which.
def _encoded(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: (
                base64.b64encode(inner).decode()
                if key == "B"
                else [base64.b64encode(member).decode() for member in inner]
                if key == "BS"
                else _encoded(inner)
            )
            for key, inner in value.items()
        }
    if isinstance(value, list):
        return [_encoded(inner) for inner in value]
    return value


def _decoded(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: (
                base64.b64decode(inner)
                if key == "B"
                else [base64.b64decode(member) for member in inner]
                if key == "BS"
                else _decoded(inner)
            )
            for key, inner in value.items()
        }
    if isinstance(value, list):
        return [_decoded(inner) for inner in value]
    return value


def _encoded_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    # moto keeps a message's attributes as SendMessage takes them, a binary value as bytes.
    return {
        name: {
            key: base64.b64encode(value).decode() if key == "BinaryValue" else value
            for key, value in attribute.items()
            if key in ("DataType", "StringValue", "BinaryValue") and value is not None
        }
        for name, attribute in attributes.items()
    }


def _decoded_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {key: base64.b64decode(value) if key == "BinaryValue" else value for key, value in attribute.items()}
        for name, attribute in attributes.items()
    }
