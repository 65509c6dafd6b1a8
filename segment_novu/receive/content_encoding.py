"""``Content-Encoding`` of a request body: ``gzip`` (analytics-python's ``gzip=True`` and other Tracking
API clients) and ``deflate`` are inflated, anything else is refused by name.

Inflation is bounded by ``MAX_BODY_BYTES`` and stops the moment the output passes it, so a small
body that would inflate to gigabytes costs one limit's worth of memory and time, then a ``413``.
Signatures and parsing see the inflated JSON text, which is what Segment signs.
"""

from __future__ import annotations

import zlib

from segment_novu.receive.intake import Rejected

_GZIP = zlib.MAX_WBITS | 16
_ZLIB = zlib.MAX_WBITS
_RAW_DEFLATE = -zlib.MAX_WBITS


def decode(body: bytes, header: str | None, limit: int) -> bytes:
    """The body with its codings undone, last applied first; ``identity`` and no header leave it as is."""
    codings = [coding.strip().lower() for coding in (header or "").split(",")]
    codings = [coding for coding in codings if coding and coding != "identity"]
    for coding in codings:
        if coding not in ("gzip", "x-gzip", "deflate"):
            raise Rejected(415, f"unsupported Content-Encoding {coding!r}: send gzip, deflate or no encoding")
    for coding in reversed(codings):
        body = _gunzip(body, limit) if coding in ("gzip", "x-gzip") else _inflate_deflate(body, limit)
    return body


def _gunzip(body: bytes, limit: int) -> bytes:
    """Every gzip member in turn (a concatenation of members is one valid gzip body)."""
    output = bytearray()
    remaining = body
    while True:
        member, remaining = _inflate(remaining, _GZIP, limit - len(output), "gzip")
        output += member
        if not remaining.strip(b"\0"):
            return bytes(output)


def _inflate_deflate(body: bytes, limit: int) -> bytes:
    """HTTP's ``deflate`` is zlib-wrapped, but some clients send raw deflate: both are read."""
    try:
        inflated, rest = _inflate(body, _ZLIB, limit, "deflate")
    except Rejected as error:
        if error.status != 400:
            raise
        inflated, rest = _inflate(body, _RAW_DEFLATE, limit, "deflate")
    if rest:
        raise Rejected(400, "body is not valid deflate: data after its end")
    return inflated


def _inflate(data: bytes, wbits: int, room: int, name: str) -> tuple[bytes, bytes]:
    """One stream inflated to at most ``room`` bytes; returns it and the bytes after its end."""
    inflater = zlib.decompressobj(wbits)
    try:
        # max_length bounds the output whatever the compression ratio: one byte past the room is proof enough.
        output = inflater.decompress(data, room + 1)
    except zlib.error:
        raise Rejected(400, f"body is not valid {name}") from None
    if len(output) > room:
        raise Rejected(413, f"body larger than MAX_BODY_BYTES ({room} bytes) once inflated")
    if not inflater.eof:
        raise Rejected(400, f"body is not valid {name}: it ends before its stream does")
    return output, inflater.unused_data
