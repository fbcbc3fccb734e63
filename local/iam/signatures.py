"""Request signatures, checked as AWS checks them: a request signed with a known access key but another
secret is refused, whatever the policy would allow.

The signature (SigV4, in the Authorization header or a presigned URL's query) is recomputed with
botocore's own signer and the key's secret over the request as it arrived: its method, its path and query
as sent, the headers it says it signed, and its payload hash (S3's `x-amz-content-sha256` header as given,
including `UNSIGNED-PAYLOAD` and the seed of a `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` upload, whose chunk
signatures are not checked; a presigned S3 URL's `UNSIGNED-PAYLOAD`; otherwise the body's hash).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from botocore.auth import SIGV4_TIMESTAMP, UNSIGNED_PAYLOAD, S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

_ALGORITHM = "AWS4-HMAC-SHA256"
_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+)\s*,\s*SignedHeaders=(?P<signed>[^,\s]+)\s*,"
    r"\s*Signature=(?P<signature>[0-9a-f]+)\s*$"
)
_HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class Refusal(Enum):
    """Why a signature is refused (each service answers it with its own error code)."""

    MISMATCH = "signature does not match"
    EXPIRED = "presigned URL expired"
    PAYLOAD_MISMATCH = "x-amz-content-sha256 does not match the body"


@dataclass(frozen=True)
class Received:
    """A request as it arrived: `url` holds the path and query exactly as sent, `headers` lower-case names."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes


def _verifier(base: type[Any]) -> type[Any]:
    class Verifier(base):
        """botocore's signer, signing exactly the headers the request says it signed."""

        def __init__(self, credentials: Credentials, service: str, region: str, signed: list[str]) -> None:
            super().__init__(credentials, service, region)
            self._signed = signed

        def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
            headers = HTTPHeaders()
            for name in self._signed:
                headers[name] = request.headers.get(name, "")
            return headers

    return Verifier


# S3 signs its path as sent; every other service signs it normalized and encoded once more.
_VERIFIERS = {True: _verifier(S3SigV4Auth), False: _verifier(SigV4Auth)}


def _timestamp(value: str) -> str:
    """SigV4's timestamp from an X-Amz-Date value, or from an HTTP Date header."""
    if re.fullmatch(r"\d{8}T\d{6}Z", value):
        return value
    try:
        return parsedate_to_datetime(value).astimezone(datetime.UTC).strftime(SIGV4_TIMESTAMP)
    except (TypeError, ValueError):
        return ""


def refusal(request: Received, secret_access_key: str) -> Refusal | None:
    """Why AWS would refuse this request's signature made with `secret_access_key`; None if it would not."""
    parts = urlsplit(request.url)
    # The Host header, as botocore signs it: the URL's, where the request as given has none.
    headers = {"host": parts.netloc} | {name.lower(): value for name, value in request.headers.items()}
    query = parse_qs(parts.query, keep_blank_values=True)
    header_auth = _AUTHORIZATION.match(headers.get("authorization", "").strip())
    if header_auth:
        credential, signed, given = header_auth.group("credential", "signed", "signature")
        timestamp = _timestamp(headers.get("x-amz-date") or headers.get("date", ""))
        url = request.url
    elif (query.get("X-Amz-Algorithm") or [""])[0] == _ALGORITHM:
        credential = query.get("X-Amz-Credential", [""])[0]
        signed = query.get("X-Amz-SignedHeaders", [""])[0]
        given = query.get("X-Amz-Signature", [""])[0]
        timestamp = _timestamp(query.get("X-Amz-Date", [""])[0])
        # The canonical query is every parameter but the signature, as sent.
        kept = "&".join(pair for pair in parts.query.split("&") if pair.partition("=")[0] != "X-Amz-Signature")
        url = urlunsplit(parts._replace(query=kept))
    else:
        return Refusal.MISMATCH
    access_key_id, _, scope = credential.partition("/")
    _date, region, service = [*scope.split("/"), "", "", ""][:3]
    if not timestamp or not region or not service:
        return Refusal.MISMATCH
    s3 = service == "s3"
    presigned = header_auth is None
    if presigned and s3:
        payload = UNSIGNED_PAYLOAD
    elif "x-amz-content-sha256" in headers:
        payload = headers["x-amz-content-sha256"]
    else:
        payload = hashlib.sha256(request.body).hexdigest()
    names = signed.split(";")
    signer = _VERIFIERS[s3](Credentials(access_key_id, secret_access_key), service, region, names)
    # Only what the signer reads: the signed headers, and the payload hash the client signed.
    signed_headers = {name: headers.get(name, "") for name in names if name != "x-amz-content-sha256"}
    copy = AWSRequest(request.method, url, signed_headers | {"X-Amz-Content-SHA256": payload}, request.body)
    copy.context["timestamp"] = timestamp
    expected = signer.signature(signer.string_to_sign(copy, signer.canonical_request(copy)), copy)
    if not hmac.compare_digest(str(expected), given):
        return Refusal.MISMATCH
    if presigned and _expired(timestamp, query.get("X-Amz-Expires", ["0"])[0]):
        return Refusal.EXPIRED
    if s3 and _HEX_SHA256.match(payload) and payload != hashlib.sha256(request.body).hexdigest():
        return Refusal.PAYLOAD_MISMATCH
    return None


def _expired(timestamp: str, expires: str) -> bool:
    signed_at = datetime.datetime.strptime(timestamp, SIGV4_TIMESTAMP).replace(tzinfo=datetime.UTC)
    return time.time() > signed_at.timestamp() + int(expires) if expires.isdigit() else True
