"""Segment's ``X-Signature``: lowercase hex HMAC-SHA1 of the body, keyed with the shared secret.

A single event is signed over the raw body. A batch is signed over its first element's JSON text
only (``JSON.stringify(body[0])``), and an upstream proposal signs the whole body: both are accepted.
Verification works on the raw bytes, never a re-serialisation (JavaScript and Python print some
numbers differently). Two secrets may be configured so the shared secret can rotate without downtime.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Sequence

from segment_novu.intake import first_element_text

HEADER = "X-Signature"
_HEX_SHA1 = re.compile(r"^[0-9a-fA-F]{40}$")


class SignatureError(Exception):
    """The request is not provably from Segment; the message says why, never what was expected."""


def sign(body: bytes, secret: str) -> str:
    """The signature Segment would send for ``body``: for tests and for clients that forward events."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha1).hexdigest()


def verify(body: bytes, headers: Sequence[str], secrets: Sequence[str]) -> None:
    if not headers:
        raise SignatureError(f"missing {HEADER} header")
    if len(headers) > 1:
        raise SignatureError(f"more than one {HEADER} header")
    presented = headers[0].strip()
    if not _HEX_SHA1.match(presented):
        raise SignatureError(f"malformed {HEADER} header: expected 40 hex characters")
    presented = presented.lower()
    signed_texts = [body]
    first = first_element_text(body)
    if first is not None:
        signed_texts.append(first)
    matched = False
    for secret in secrets:
        for text in signed_texts:
            matched |= hmac.compare_digest(sign(text, secret), presented)
    if not matched:
        raise SignatureError(f"{HEADER} does not match the body")
