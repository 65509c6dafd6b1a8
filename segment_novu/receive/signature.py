"""Segment's ``X-Signature``: lowercase hex HMAC-SHA1 of the body, keyed with the shared secret.

A single event is signed over the raw body. Segment signs a batch over its first element's JSON text
only (``JSON.stringify(body[0])``); an upstream proposal signs the whole body. A first-element signature
proves nothing about the events after it (anyone holding one signed body can append their own), so it
is refused unless the operator opts in (``ACCEPT_FIRST_ELEMENT_SIGNATURE``). Verification works on the
raw bytes, never a re-serialisation (JavaScript and Python print some numbers differently). Two secrets
may be configured so the shared secret can rotate without downtime.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence

from segment_novu.receive.intake import first_element_text

HEADER = "X-Signature"
_HEX_SHA1 = re.compile(r"^[0-9a-fA-F]{40}$")


class SignatureError(Exception):
    """The request is not provably from Segment; the message says why, never what was expected."""


class FirstElementOnly(SignatureError):
    """The signature is Segment's, but covers only the batch's first element: the rest is unproven."""

    def __init__(self):
        super().__init__(
            f"{HEADER} covers only the batch's first element, not the events after it: sign the whole body,"
            " or send SEGMENT_AUTH_TOKEN in an Authorization header"
        )


def sign(body: bytes, secret: str) -> str:
    """The signature Segment would send for ``body``: for tests and for clients that forward events."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha1).hexdigest()


def verify(
    body: bytes, headers: Sequence[str], secrets: Sequence[str], *, accept_first_element: bool = False
) -> None:
    if not headers:
        raise SignatureError(f"missing {HEADER} header")
    if len(headers) > 1:
        raise SignatureError(f"more than one {HEADER} header")
    presented = headers[0].strip()
    if not _HEX_SHA1.match(presented):
        raise SignatureError(f"malformed {HEADER} header: expected 40 hex characters")
    presented = presented.lower()
    if _matches(body, presented, secrets):
        return
    first = first_element_text(body)
    if first is None or not _matches(first, presented, secrets):
        raise SignatureError(f"{HEADER} does not match the body")
    if not accept_first_element:
        raise FirstElementOnly()


def _matches(text: bytes, presented: str, secrets: Sequence[str]) -> bool:
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(sign(text, secret), presented)
    return matched
