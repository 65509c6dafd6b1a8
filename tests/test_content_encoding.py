"""Compressed bodies, as analytics-python (``gzip=True``) and other Tracking API clients send them:
inflated within ``MAX_BODY_BYTES``, signatures checked over the JSON text, other codings refused by name.
Through the function served by functions-framework, asserting the status and the Novu calls."""

from __future__ import annotations

import base64
import gzip
import json
import time
import zlib
from pathlib import Path

import pytest

from segment_novu.receive.signature import sign

DATA = Path(__file__).parent / "data" / "segment"
TRIGGER = "/v1/events/trigger"
EVENT = json.dumps({"type": "track", "userId": "u1", "messageId": "m1", "event": "Order Completed"}).encode()


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.fixture
def function(serve_function):
    return lambda **env: serve_function(WORKFLOW_DISCOVERY="false", **env)


@pytest.mark.parametrize("coding, encode", [
    ("gzip", gzip.compress),
    ("x-gzip", gzip.compress),
    ("GZIP", gzip.compress),
    ("deflate", zlib.compress),
    ("deflate", raw_deflate),
    ("identity", lambda data: data),
    ("gzip, gzip", lambda data: gzip.compress(gzip.compress(data))),
], ids=["gzip", "x-gzip", "upper-case", "deflate-zlib", "deflate-raw", "identity", "gzip-twice"])
def test_a_compressed_event_is_delivered(function, novu, coding, encode):
    response = function().post(data=encode(EVENT), headers={"Content-Encoding": coding})

    assert response.status_code == 200, response.text
    assert [call.body["name"] for call in novu.calls("POST", TRIGGER)] == ["order-completed"]


def test_analytics_python_gzip_batch_to_v1_batch_is_delivered(function, novu):
    """What segment-analytics-python sends with gzip=True: the envelope gzipped, Basic auth with the write key."""
    served = function(SEGMENT_AUTH_TOKEN="write-key")
    headers = {"Content-Encoding": "gzip", "Authorization": "Basic " + base64.b64encode(b"write-key:").decode(),
               "User-Agent": "analytics-python/2.3.4"}

    response = served.post(data=gzip.compress((DATA / "batch-tracking-api.json").read_bytes()),
                           path="/v1/batch", headers=headers)

    assert response.status_code == 200, response.text
    assert [entry["outcome"] for entry in response.json()["events"]] == ["delivered"] * 4
    assert len(novu.calls()) == 4


def test_the_signature_is_checked_over_the_json_text(function, novu):
    served = function(SEGMENT_SHARED_SECRET="shh")
    body = gzip.compress(EVENT)

    over_text = served.post(data=body, headers={"Content-Encoding": "gzip", "X-Signature": sign(EVENT, "shh")})
    over_bytes = served.post(data=body, headers={"Content-Encoding": "gzip", "X-Signature": sign(body, "shh")})

    assert over_text.status_code == 200, over_text.text
    assert over_bytes.status_code == 401
    assert len(novu.calls()) == 1


def _bomb(gigabytes: int) -> bytes:
    """Concatenated gzip members of zeros: about a megabyte that inflates to ``gigabytes`` GiB."""
    member = gzip.compress(bytes(64 * 1024 * 1024), compresslevel=9)
    return member * (16 * gigabytes)


def test_a_body_that_inflates_past_the_limit_is_a_413_and_inflation_stops_there(function, novu):
    served = function(MAX_BODY_BYTES=str(1024 * 1024))
    bomb = _bomb(1)
    assert len(bomb) < 1024 * 1024

    started = time.monotonic()
    response = served.post(data=bomb, headers={"Content-Encoding": "gzip"})

    assert time.monotonic() - started < 2
    assert response.status_code == 413
    assert response.json() == {"message": "body larger than MAX_BODY_BYTES (1048576 bytes) once inflated"}
    assert novu.calls() == []


def test_a_body_just_within_the_limit_once_inflated_is_read(function, novu):
    padded = EVENT[:-1] + b', "pad": "' + b" " * 2000 + b'"}'
    served = function(MAX_BODY_BYTES=str(len(padded)))

    assert served.post(data=gzip.compress(padded), headers={"Content-Encoding": "gzip"}).status_code == 200
    served_smaller = function(MAX_BODY_BYTES=str(len(padded) - 1))
    assert served_smaller.post(data=gzip.compress(padded), headers={"Content-Encoding": "gzip"}).status_code == 413


@pytest.mark.parametrize("coding, body, message", [
    ("br", EVENT, "unsupported Content-Encoding 'br': send gzip, deflate or no encoding"),
    ("gzip, zstd", EVENT, "unsupported Content-Encoding 'zstd': send gzip, deflate or no encoding"),
    ("gzip", EVENT, "body is not valid gzip"),
    ("gzip", gzip.compress(EVENT)[:-6], "body is not valid gzip: it ends before its stream does"),
    ("gzip", b"", "body is not valid gzip: it ends before its stream does"),
    ("gzip", gzip.compress(EVENT) + b"trailing", "body is not valid gzip"),
    ("deflate", b"\x00\x01\x02not deflate", "body is not valid deflate"),
    ("deflate", zlib.compress(EVENT) + b"more", "body is not valid deflate: data after its end"),
], ids=["brotli", "zstd-in-a-list", "not-gzip", "truncated", "empty", "trailing-garbage", "not-deflate",
        "deflate-trailing"])
def test_bad_or_unknown_encodings_are_refused_with_their_reason(function, novu, coding, body, message):
    response = function().post(data=body, headers={"Content-Encoding": coding})

    assert response.status_code == (415 if "unsupported" in message else 400)
    assert response.json() == {"message": message}
    assert novu.calls() == []
