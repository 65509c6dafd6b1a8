"""Novu's contract: requests (and the stand-in's answers) checked against Novu's own OpenAPI document.

The document is ``tests/data/novu/openapi.json``: Novu's published document cut down to the
operations the bridge uses (``tests/data/novu/SOURCE.md`` says where it comes from and how to
regenerate it). Validation is openapi-core's, in-process, under OpenAPI 3.0 rules: path and method,
path/query/header parameters, the ``secretKey`` security scheme, the content type and the JSON body
against the operation's schema.

- ``validate_request(recorded)``: a request the stand-in recorded (``tests.novu_standin.Recorded``).
- ``validate_response(recorded, status, headers, body)``: an answer to that request. Novu wraps every
  success body in ``{"data": ...}`` while its document shows bodies bare: both are accepted.

Both raise ``AssertionError`` with every problem found, one per line.

The request's host is not the bridge's (the stand-in listens on loopback): the document's first
server (``https://api.novu.co``) is put in its place, because openapi-core finds the operation by
matching the full URL against the document's ``servers``.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from openapi_core import Config, OpenAPI, V30RequestValidator, V30ResponseValidator
from openapi_core.testing import MockRequest, MockResponse

DOCUMENT_PATH = Path(__file__).resolve().parent / "data" / "novu" / "openapi.json"
# The document's securitySchemes.secretKey is an apiKey in the Authorization header, which cannot say
# more than "present"; its description says the value is "ApiKey <novu_secret_key>". Checked here.
AUTHORIZATION_PREFIX = "ApiKey "

_lock = threading.RLock()
_cache: dict[str, object] = {}


def document() -> dict:
    """The document as JSON (loaded once)."""
    with _lock:
        if "document" not in _cache:
            _cache["document"] = json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))
        return _cache["document"]


def server_url() -> str:
    return document()["servers"][0]["url"]


def openapi(*, undeclared: str = "allow") -> OpenAPI:
    """openapi-core's OpenAPI for the document, built once per policy (building it takes ~1 s).

    ``undeclared="forbid"`` treats every schema without ``additionalProperties`` as if it said
    ``false``: a property the document does not declare is then an error (stricter than Novu).
    """
    key = "openapi:" + undeclared
    with _lock:
        if key not in _cache:
            config = Config(
                # The document is OpenAPI 3.0.0. Validators, not unmarshallers: same checks, every error
                # reported, ten times faster on a bulk body of 100 triggers.
                request_validator_cls=V30RequestValidator,
                response_validator_cls=V30ResponseValidator,
                additional_properties_default_policy=undeclared,
            )
            # from_file_path also checks the document itself against the OpenAPI 3.0 schema.
            _cache[key] = OpenAPI.from_file_path(str(DOCUMENT_PATH), config=config)
        return _cache[key]


def _header(headers: dict, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value
    return None


def _body_bytes(body) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    try:  # NaN / Infinity are not JSON: Novu's parser refuses them
        return json.dumps(body, allow_nan=False).encode("utf-8")
    except ValueError:
        return json.dumps(body).encode("utf-8")


def _strict_json_problem(body) -> str | None:
    if body is None or isinstance(body, (bytes, bytearray)):
        return None
    try:
        json.dumps(body, allow_nan=False)
    except ValueError:
        return "body is not strict JSON: it holds NaN or Infinity"
    return None


def _describe(recorded) -> str:
    return f"{recorded.method} {recorded.path}"


def to_openapi_request(recorded) -> MockRequest:
    """A recorded request as openapi-core's request: host from the document, path and query as sent,
    headers as sent, the body as JSON bytes.

    ``NovuStandIn`` records the path without its query string, so query parameters are checked only
    for requests built with one (``make_request("GET", "/v2/workflows?limit=10")``)."""
    url = urlsplit(recorded.path)
    content_type = _header(recorded.headers, "Content-Type")
    body = _body_bytes(recorded.body)
    return MockRequest(
        server_url(),
        recorded.method,
        url.path,
        args=parse_qsl(url.query, keep_blank_values=True) or None,  # a list: repeated names are kept
        headers=dict(recorded.headers or {}),
        data=body,
        # No Content-Type on a request without a body (a DELETE): nothing to declare.
        content_type=(content_type or ("" if body is None else "application/octet-stream")).lower(),
    )


def _chain(error: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _short(error: BaseException) -> str:
    text = str(error)
    if " Value " in text or text.startswith("Value "):  # openapi-core repeats the whole value: drop it
        text = text.split("Value ", 1)[0].rstrip(": ")
    return text[:200]


def _head(error: BaseException, short: str) -> str:
    name = type(error).__name__
    if not short or short == name:
        return name
    return short if short.startswith(name) else f"{name}: {short}"


def _flatten(error: BaseException) -> list[str]:
    """openapi-core's error as readable lines: each JSON-schema error with where it is, or else the
    chain of causes (``Query parameter error: limit: Failed to cast value to number type: ten``)."""
    chain = _chain(error)
    schema_lines = []
    for link in chain:
        for schema_error in getattr(link, "schema_errors", None) or ():
            schema_lines.extend(_schema_error_lines(schema_error))
        if schema_lines:
            break
    if schema_lines:
        return [_head(error, _short(error))] + ["  " + line for line in schema_lines]
    messages = []
    for link in chain:
        short = _short(link)
        if short and short not in " ".join(messages) and not isinstance(link, StopIteration):
            messages.append(short)
    return [_head(error, ": ".join(messages))]


def _schema_error_lines(error, indent: str = "") -> list[str]:
    where = "/".join(str(part) for part in error.absolute_path) or "(body)"
    lines = [f"{indent}at {where}: {error.message}"]
    if error.context:  # oneOf / anyOf: why each alternative failed
        for sub in sorted(error.context, key=lambda e: (list(e.relative_schema_path), e.message))[:12]:
            sub_where = "/".join(str(part) for part in sub.absolute_path) or "(body)"
            branch = sub.relative_schema_path[0] if sub.relative_schema_path else "?"
            lines.append(f"{indent}    alternative {branch}, at {sub_where}: {sub.message}")
    return lines


def request_errors(recorded, *, undeclared: str = "allow") -> list[str]:
    """Every way the request breaks the document (empty: it is valid)."""
    problems = []
    validator = openapi(undeclared=undeclared).request_validator
    for error in validator.iter_errors(to_openapi_request(recorded)):
        problems.extend(_flatten(error))
    strict = _strict_json_problem(recorded.body)
    if strict:
        problems.append(strict)
    authorization = _header(recorded.headers, "Authorization")
    if authorization is not None and not (
        authorization.startswith(AUTHORIZATION_PREFIX) and authorization[len(AUTHORIZATION_PREFIX):].strip()
    ):
        problems.append("Authorization header is not 'ApiKey <secret key>' (securitySchemes.secretKey)")
    return problems


def validate_request(recorded, *, undeclared: str = "allow") -> None:
    """Raise AssertionError listing every schema error when the request breaks Novu's document."""
    problems = request_errors(recorded, undeclared=undeclared)
    if problems:
        body = json.dumps(recorded.body, ensure_ascii=False)[:600] if recorded.body is not None else "(none)"
        raise AssertionError(
            f"{_describe(recorded)} breaks Novu's OpenAPI document:\n  "
            + "\n  ".join(problems)
            + f"\n  body sent: {body}"
        )


def response_errors(recorded, status: int, headers: dict, body, *, undeclared: str = "allow") -> list[str]:
    """Every way an answer to ``recorded`` breaks the document's response for its status.

    A success body may come wrapped in ``{"data": ...}`` (as Novu sends it) or bare (as the document
    shows it): it is valid if either reading is. The errors reported are those of the unwrapped one.
    """
    readings = [body]
    if 200 <= status < 300 and isinstance(body, dict) and set(body) == {"data"}:
        readings = [body["data"], body]
    first_problems = None
    for reading in readings:
        problems = _response_problems(recorded, status, headers, reading, undeclared)
        if not problems:
            return []
        if first_problems is None:
            first_problems = problems
    return first_problems


def _response_problems(recorded, status, headers, body, undeclared) -> list[str]:
    content_type = _header(headers, "Content-Type") or ""
    response = MockResponse(
        _body_bytes(body) or b"",
        status_code=status,
        headers=dict(headers or {}),
        content_type=content_type.lower(),
    )
    validator = openapi(undeclared=undeclared).response_validator
    problems = []
    for error in validator.iter_errors(to_openapi_request(recorded), response):
        problems.extend(_flatten(error))
    return problems


def validate_response(recorded, status: int, headers: dict, body, *, undeclared: str = "allow") -> None:
    problems = response_errors(recorded, status, headers, body, undeclared=undeclared)
    if problems:
        raise AssertionError(
            f"the {status} answer to {_describe(recorded)} breaks Novu's OpenAPI document:\n  "
            + "\n  ".join(problems)
            + f"\n  body: {json.dumps(body, ensure_ascii=False)[:600]}"
        )


def operation_of(recorded) -> str:
    """``METHOD /path/template`` of the documented operation the request matches, or its raw path."""
    path = urlsplit(recorded.path).path
    # Literal segments before parameters: /v1/events/trigger/bulk is not a {transactionId}.
    for template in sorted(document()["paths"], key=lambda template: template.count("{")):
        pattern = template.strip("/").split("/")
        parts = path.strip("/").split("/")
        if len(pattern) == len(parts) and all(
            p == q or (p.startswith("{") and p.endswith("}") and q) for p, q in zip(pattern, parts)
        ):
            return f"{recorded.method.upper()} {template}"
    return f"{recorded.method.upper()} {path}"


def make_request(method: str, path: str, body=None, *, headers: dict | None = None, key: str = "test-novu-key"):
    """A ``Recorded`` request as the bridge sends them: ``ApiKey`` authorization, JSON body."""
    from tests.novu_standin import Recorded

    sent = {"Authorization": "ApiKey " + key, "Accept": "application/json"}
    if body is not None:
        sent["Content-Type"] = "application/json"
    sent.update(headers or {})
    return Recorded(method.upper(), path, {name: value for name, value in sent.items() if value is not None}, body)
