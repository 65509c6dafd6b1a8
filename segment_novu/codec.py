"""JSON for the hot path: orjson where it gives the standard library's result, the standard library
where it would not.

Invariant: callers see exactly the standard library's results (values, errors, output bytes), whichever
library did the work. orjson differs from the standard library in a few places, and each is routed back
to it here (what orjson saves on each request: bench/ANALYSIS.md):

- it reads an integer outside 64 bits as a float, losing digits: a body with a run of 19 or more
  digits anywhere (a long id in a string too) is parsed by the standard library instead;
- it cannot write such an integer (a body parsed that way may hold one): the standard library writes it;
- it refuses what the standard library also refuses, but says so differently: ``loads`` raises
  ``Unsupported`` and the caller's own standard-library parse names the fault;
- it has no ASCII-only output: where escapes are asked for, a document with other characters is
  written by the standard library.
"""

from __future__ import annotations

import json

import orjson

# Every digit as "0", every other byte as " ": a run of 19 digits is then a plain substring search.
_DIGITS_AS_ZEROS = bytes(ord("0") if ord("0") <= byte <= ord("9") else ord(" ") for byte in range(256))
_LONG_RUN = b"0" * 19
_PASSTHROUGH = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS


class Unsupported(ValueError):
    """orjson cannot give the standard library's result for this document."""


def loads(data: bytes):
    """The parsed document; ``Unsupported`` when orjson refuses it or may read a number differently."""
    if _LONG_RUN in data.translate(_DIGITS_AS_ZEROS):
        raise Unsupported("a run of 19 or more digits")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise Unsupported(str(error)) from None


def dumps(document, *, sort_keys: bool = False, default=None, ensure_ascii: bool = False) -> bytes:
    """Compact JSON as UTF-8 bytes, as ``json.dumps(..., separators=(",", ":"))`` gives with the same
    options. orjson writes characters beyond ASCII as they are: where escapes are asked for, a document
    holding any is written by the standard library."""
    option = _PASSTHROUGH | orjson.OPT_SORT_KEYS if sort_keys else _PASSTHROUGH
    try:
        encoded = orjson.dumps(document, default=default, option=option)
    except TypeError:  # an integer beyond 64 bits, or a type only ``default`` knows
        pass
    else:
        if not ensure_ascii or encoded.isascii():
            return encoded
    return json.dumps(document, sort_keys=sort_keys, default=default, separators=(",", ":"),
                      ensure_ascii=ensure_ascii).encode("utf-8")
