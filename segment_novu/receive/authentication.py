"""Is this request from Segment? An ``X-Signature`` against the shared secret(s), or a token.

Webhook destinations sign (``signature``); the Extensible Webhook and Tracking-API clients send a
token instead: ``Authorization: Bearer <token>`` or ``Basic base64(<token>:)`` (a write key as user
name) or ``Basic base64(<user>:<token>)``. With neither secret nor token configured, every request
is served (the function logs a warning at start). Each accepted proof covers every byte of the body:
a signature over a batch's first element alone counts only where the operator opted in, and otherwise
needs the token beside it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Sequence

from segment_novu.receive import signature


class Unauthenticated(Exception):
    """Refused: the message says why, never what was expected."""


def _token_matches(authorization: str, token: str) -> bool:
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    expected = token.encode("utf-8")
    if scheme.lower() == "bearer":
        return hmac.compare_digest(credentials.encode("utf-8"), expected)
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True)
        except (binascii.Error, ValueError):
            return False
        user, _, password = decoded.partition(b":")
        return hmac.compare_digest(user, expected) | hmac.compare_digest(password, expected)
    return False


def authenticate(
    body: bytes,
    signatures: Sequence[str],
    authorizations: Sequence[str],
    secrets: Sequence[str],
    token: str | None,
    *,
    accept_first_element: bool = False,
) -> None:
    if not secrets and not token:
        return
    if signatures and secrets:
        try:
            signature.verify(body, signatures, secrets, accept_first_element=accept_first_element)
        except signature.FirstElementOnly as error:
            if not (authorizations and token):
                raise Unauthenticated(str(error)) from None
        except signature.SignatureError as error:
            raise Unauthenticated(str(error)) from None
        else:
            return
    if authorizations and token:
        if len(authorizations) > 1:
            raise Unauthenticated("more than one Authorization header")
        if not _token_matches(authorizations[0], token):
            raise Unauthenticated("Authorization token does not match")
        return
    if secrets and token:
        raise Unauthenticated(f"missing {signature.HEADER} header or Authorization token")
    if secrets:
        raise Unauthenticated(f"missing {signature.HEADER} header")
    raise Unauthenticated("missing Authorization token")
