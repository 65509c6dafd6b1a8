import base64
import hashlib
import hmac
import json

import pytest

from segment_novu.receive import authentication, signature
from segment_novu.receive.authentication import Unauthenticated
from segment_novu.receive.signature import SignatureError

SECRET = "s3cret"
OLD_SECRET = "old-s3cret"
TOKEN = "write-key-123"

EVENT = b'{"type":"track","userId":"u1","event":"Order Completed","properties":{"total":5e-7}}'
FIRST = b'{"type":"identify","userId":"u1","traits":{"score":5e-7}}'
SECOND = b'{"type":"track","userId":"u1","event":"Signed Up"}'
BATCH = b"[" + FIRST + b"," + SECOND + b"]"
PRETTY_BATCH = b"[\n  " + FIRST + b",\n  " + SECOND + b"\n]\n"


def sign(body: bytes, secret: str = SECRET) -> str:
    return signature.sign(body, secret)


def refusal(body: bytes, headers, secrets=(SECRET,)) -> str:
    with pytest.raises(SignatureError) as caught:
        signature.verify(body, headers, secrets)
    return str(caught.value)


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


# sign


@pytest.mark.parametrize("body", [b"", EVENT, BATCH, "é".encode()])
@pytest.mark.parametrize("secret", [SECRET, "ключ"])
def test_sign_is_hmac_sha1_hex(body, secret):
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha1).hexdigest()
    assert sign(body, secret) == expected
    assert len(expected) == 40 and expected == expected.lower()


# verify: accepted


@pytest.mark.parametrize(
    "body, signed",
    [
        (EVENT, EVENT),
        (BATCH, BATCH),
        (PRETTY_BATCH, PRETTY_BATCH),
    ],
    ids=["event", "batch-whole-body", "pretty-batch-whole-body"],
)
def test_verify_accepts(body, signed):
    assert signature.verify(body, [sign(signed)], (SECRET,)) is None


FIRST_ELEMENT_ONLY = (
    "X-Signature covers only the batch's first element, not the events after it: sign the whole body,"
    " or send SEGMENT_AUTH_TOKEN in an Authorization header"
)


@pytest.mark.parametrize("body", [BATCH, PRETTY_BATCH], ids=["batch", "pretty-batch"])
def test_verify_refuses_a_first_element_signature_by_default(body):
    with pytest.raises(signature.FirstElementOnly) as caught:
        signature.verify(body, [sign(FIRST)], (SECRET,))
    assert str(caught.value) == FIRST_ELEMENT_ONLY


@pytest.mark.parametrize("body", [BATCH, PRETTY_BATCH], ids=["batch", "pretty-batch"])
def test_verify_accepts_a_first_element_signature_when_opted_in(body):
    assert signature.verify(body, [sign(FIRST)], (SECRET,), accept_first_element=True) is None


def test_verify_works_on_raw_bytes_not_a_reserialisation():
    reserialised = json.dumps(json.loads(EVENT), separators=(",", ":")).encode()
    assert reserialised != EVENT  # Python prints 5e-07: a re-serialisation would not match
    signature.verify(EVENT, [sign(EVENT)], (SECRET,))
    signature.verify(BATCH, [sign(FIRST)], (SECRET,), accept_first_element=True)
    assert refusal(EVENT, [sign(reserialised)]) == "X-Signature does not match the body"


@pytest.mark.parametrize(
    "header", [sign(EVENT).upper(), f"  {sign(EVENT)}\t", sign(EVENT)[:20].upper() + sign(EVENT)[20:]]
)
def test_verify_accepts_uppercase_and_padded_hex(header):
    signature.verify(EVENT, [header], (SECRET,))


@pytest.mark.parametrize("secret", [SECRET, OLD_SECRET])
@pytest.mark.parametrize("body, signed", [(EVENT, EVENT), (BATCH, FIRST), (BATCH, BATCH)])
def test_verify_accepts_either_secret_during_rotation(secret, body, signed):
    signature.verify(body, [sign(signed, secret)], (SECRET, OLD_SECRET), accept_first_element=True)


# verify: refused


@pytest.mark.parametrize(
    "body, headers, secrets, message",
    [
        (EVENT, [], (SECRET,), "missing X-Signature header"),
        (EVENT, [sign(EVENT), sign(EVENT)], (SECRET,), "more than one X-Signature header"),
        (EVENT, [sign(EVENT)[:-1]], (SECRET,), "malformed X-Signature header: expected 40 hex characters"),
        (EVENT, [sign(EVENT) + "0"], (SECRET,), "malformed X-Signature header: expected 40 hex characters"),
        (EVENT, ["g" * 40], (SECRET,), "malformed X-Signature header: expected 40 hex characters"),
        (EVENT, ["sha1=" + sign(EVENT)], (SECRET,), "malformed X-Signature header: expected 40 hex characters"),
        (EVENT, [""], (SECRET,), "malformed X-Signature header: expected 40 hex characters"),
        (EVENT, [sign(EVENT, "wrong")], (SECRET,), "X-Signature does not match the body"),
        (EVENT, [sign(EVENT, OLD_SECRET)], (SECRET,), "X-Signature does not match the body"),
        (EVENT, [sign(EVENT)], (), "X-Signature does not match the body"),
        (EVENT.replace(b"u1", b"u2"), [sign(EVENT)], (SECRET,), "X-Signature does not match the body"),
        (EVENT + b" ", [sign(EVENT)], (SECRET,), "X-Signature does not match the body"),
        (BATCH.replace(b"5e-7", b"5e-6"), [sign(FIRST)], (SECRET,), "X-Signature does not match the body"),
        (BATCH, [sign(SECOND)], (SECRET,), "X-Signature does not match the body"),
        (BATCH, [sign(json.dumps(json.loads(FIRST)).encode())], (SECRET,), "X-Signature does not match the body"),
    ],
    ids=[
        "missing", "two-headers", "too-short", "too-long", "non-hex", "prefixed", "empty", "wrong-secret",
        "previous-secret-not-configured", "no-secret-configured", "tampered", "trailing-space",
        "tampered-first-element", "second-element-signature", "reserialised-first-element",
    ],
)
def test_verify_refuses(body, headers, secrets, message):
    assert refusal(body, headers, secrets) == message


def test_refusal_never_reveals_the_expected_signature():
    message = refusal(EVENT, [sign(EVENT, "wrong")])
    assert sign(EVENT) not in message and SECRET not in message


# authentication.authenticate

SIGNED = [sign(EVENT)]
BAD_SIGNATURE = [sign(EVENT, "wrong")]
BEARER = [f"Bearer {TOKEN}"]
NO_SIGNATURE = "missing X-Signature header"
NO_MATCH = "Authorization token does not match"


@pytest.mark.parametrize(
    "signatures, authorizations, secrets, token, refused",
    [
        # nothing configured: open
        ([], [], (), None, None),
        (BAD_SIGNATURE, ["Bearer nonsense"], (), None, None),
        # token only
        ([], BEARER, (), TOKEN, None),
        ([], [f"bearer   {TOKEN}  "], (), TOKEN, None),
        ([], ["Bearer wrong"], (), TOKEN, NO_MATCH),
        ([], [f"Bearer {TOKEN}x"], (), TOKEN, NO_MATCH),
        ([], ["Bearer "], (), TOKEN, NO_MATCH),
        ([], [basic(f"{TOKEN}:")], (), TOKEN, None),
        ([], [basic(f"analytics:{TOKEN}")], (), TOKEN, None),
        ([], [basic("analytics:wrong")], (), TOKEN, NO_MATCH),
        ([], [basic(":")], (), TOKEN, NO_MATCH),
        ([], ["Basic !!!not-base64!!!"], (), TOKEN, NO_MATCH),
        ([], ["Basic " + base64.b64encode(f"{TOKEN}:".encode()).decode()[:-1]], (), TOKEN, NO_MATCH),
        ([], ["Basic ééé"], (), TOKEN, NO_MATCH),
        ([], [f"Token {TOKEN}"], (), TOKEN, NO_MATCH),
        ([], [TOKEN], (), TOKEN, NO_MATCH),
        ([], [*BEARER, *BEARER], (), TOKEN, "more than one Authorization header"),
        ([], [], (), TOKEN, "missing Authorization token"),
        (SIGNED, [], (), TOKEN, "missing Authorization token"),
        (SIGNED, BEARER, (), TOKEN, None),
        # secret only
        (SIGNED, [], (SECRET,), None, None),
        (BAD_SIGNATURE, [], (SECRET,), None, "X-Signature does not match the body"),
        ([], [], (SECRET,), None, NO_SIGNATURE),
        ([], BEARER, (SECRET,), None, NO_SIGNATURE),
        ([sign(EVENT, OLD_SECRET)], [], (SECRET, OLD_SECRET), None, None),
        # both configured: either credential suffices, but a presented bad signature is refused
        (SIGNED, [], (SECRET,), TOKEN, None),
        ([], BEARER, (SECRET,), TOKEN, None),
        (SIGNED, ["Bearer wrong"], (SECRET,), TOKEN, None),
        (BAD_SIGNATURE, BEARER, (SECRET,), TOKEN, "X-Signature does not match the body"),
        ([], ["Bearer wrong"], (SECRET,), TOKEN, NO_MATCH),
        ([], [], (SECRET,), TOKEN, "missing X-Signature header or Authorization token"),
    ],
)
def test_authenticate(signatures, authorizations, secrets, token, refused):
    call = lambda: authentication.authenticate(EVENT, signatures, authorizations, secrets, token)  # noqa: E731
    if refused is None:
        assert call() is None
        return
    with pytest.raises(Unauthenticated) as caught:
        call()
    assert str(caught.value) == refused
    assert TOKEN not in str(caught.value) and SECRET not in str(caught.value)


def test_authenticate_refuses_a_first_element_signature_alone():
    with pytest.raises(Unauthenticated) as caught:
        authentication.authenticate(BATCH, [sign(FIRST)], [], (SECRET,), TOKEN)
    assert str(caught.value) == FIRST_ELEMENT_ONLY


def test_authenticate_takes_a_first_element_signature_with_the_token_beside_it():
    authentication.authenticate(BATCH, [sign(FIRST)], [f"Bearer {TOKEN}"], (SECRET,), TOKEN)
    with pytest.raises(Unauthenticated) as caught:
        authentication.authenticate(BATCH, [sign(FIRST)], ["Bearer wrong"], (SECRET,), TOKEN)
    assert str(caught.value) == NO_MATCH


def test_authenticate_verifies_a_batch_signed_on_its_first_element_when_opted_in():
    authentication.authenticate(BATCH, [sign(FIRST)], [], (SECRET,), None, accept_first_element=True)
