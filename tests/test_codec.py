"""The hot path's JSON (orjson) gives what the standard library gives, or hands over to it."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from segment_novu import codec, logs
from segment_novu.receive import intake

SEGMENT_EXAMPLES = sorted((Path(__file__).parent / "data" / "segment").glob("*.json"))
BEYOND_64_BITS = [123456789012345678901234567890, 18446744073709551616, -9223372036854775809]


@pytest.mark.parametrize("path", SEGMENT_EXAMPLES, ids=lambda path: path.name)
def test_segment_examples_read_and_write_as_the_standard_library_does(path):
    raw = path.read_bytes()
    expected = json.loads(raw)

    assert codec.loads(raw) == expected
    assert codec.dumps(expected, sort_keys=True) == json.dumps(
        expected, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


@pytest.mark.parametrize("number", BEYOND_64_BITS)
def test_integers_beyond_64_bits_keep_every_digit_in_and_out(number):
    body = json.dumps({"properties": {"amount": number}}).encode()

    with pytest.raises(codec.Unsupported):
        codec.loads(body)  # orjson would read it as a float
    document = intake.parse_json(body, 64)

    assert document["properties"]["amount"] == number
    assert type(document["properties"]["amount"]) is int
    assert codec.dumps(document) == f'{{"properties":{{"amount":{number}}}}}'.encode()


@pytest.mark.parametrize("body", [b'{"a":NaN}', b'{"a":1e400}', b'{"a":"\\ud800"}', b'{"a":', b"\xff"])
def test_what_orjson_refuses_is_handed_to_the_standard_library(body):
    with pytest.raises(codec.Unsupported):
        codec.loads(body)


def test_log_fields_of_other_types_are_written_as_str_as_before(capsys):
    logs.info("checked", at=datetime.datetime(2026, 11, 28, 10, 0, 0))
    logs.info("checked", big=BEYOND_64_BITS[0])

    first, second = map(json.loads, capsys.readouterr().out.splitlines())
    assert (first["at"], second["big"]) == ("2026-11-28 10:00:00", BEYOND_64_BITS[0])


def test_log_lines_stay_ascii_so_any_stdout_encoding_can_write_them(capsys):
    logs.info("checked", reason="Café Ordered ✓")

    out = capsys.readouterr().out
    assert out.isascii()
    assert json.loads(out)["reason"] == "Café Ordered ✓"


def test_answers_and_novu_bodies_are_utf8_as_before():
    assert codec.dumps({"event": "Café"}, sort_keys=True) == '{"event":"Café"}'.encode()


def test_non_string_keys_are_written_as_the_standard_library_writes_them():
    assert codec.dumps({1: "one", "b": [1.5, None, True]}) == b'{"1":"one","b":[1.5,null,true]}'


def test_a_big_integer_reaches_novu_with_every_digit(serve_function, novu):
    function = serve_function(WORKFLOW_DISCOVERY="false")
    event = {"type": "track", "userId": "u-1", "messageId": "m-1", "event": "Order Completed",
             "properties": {"ledgerId": BEYOND_64_BITS[0]}}

    answer = function.post(data=json.dumps(event).encode())

    assert answer.status_code == 200
    [call] = novu.calls()
    assert call.body["payload"]["ledgerId"] == BEYOND_64_BITS[0]
