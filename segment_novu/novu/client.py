"""The Novu HTTP client: one pooled session, the API key, explicit timeouts, and the recoveries that
fit in Segment's deadline (a re-read key after 401, a wait on 409, a resend after a replayed failure).

``call`` returns Novu's response as it came, or an ``OperationResult`` when the call could not get
one; ``responses`` reads what the response means.
"""

from __future__ import annotations

import hashlib
import time

import requests
from requests.utils import select_proxy

from segment_novu import codec
from segment_novu.novu.responses import Response, header_seconds
from segment_novu.novu.transport import (
    MAX_RESPONSE_BYTES,
    KeepAliveAdapter,
    ResponseTooLarge,
)
from segment_novu.reply.outcomes import MISCONFIGURED, RETRY, OperationResult
from segment_novu.secrets import SecretMisconfigured, SecretSource, SecretUnavailable

USER_AGENT = "segment-novu-bridge/1.0"
# A call started with less time than this left would likely time out after Novu did the work.
MIN_CALL_SECONDS = 0.2


class MissingKey(Exception):
    """A Novu call is needed and NOVU_API_KEY is not set."""


def encode(body) -> bytes:
    """The JSON sent to Novu, canonical (sorted keys), so the same body is always the same bytes."""
    return codec.dumps(body, sort_keys=True)


def idempotency_key(path: str, encoded_body: bytes) -> str:
    """Same request body → same key, so Novu never sees one key with two bodies (its 422)."""
    return "sgmt-" + hashlib.sha256(path.encode("utf-8") + b"\x1f" + encoded_body).hexdigest()[:48]


class NovuClient:
    def __init__(self, base_url: str, api_key: SecretSource | None, *, timeout_seconds: float = 2.5,
                 pool_size: int = 32):
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.api_key = api_key
        # Proxy settings are the instance's environment: read once here, never per call.
        proxies = requests.utils.get_environ_proxies(self.base_url)
        proxy = select_proxy(self.base_url + "/", proxies)
        self.session = requests.Session()
        self.session.proxies = proxies
        self.session.trust_env = False
        self.transport = KeepAliveAdapter(self.base_url, pool_size=pool_size,
                                          proxy=proxy if KeepAliveAdapter.carries(proxy) else None)
        self.session.mount(self.base_url + "/", self.transport)
        # A proxy the transport cannot carry itself (SOCKS, TLS to the proxy): requests' adapter does.
        self.via_session = proxy is not None and self.transport.proxy is None
        # Novu's answers are small: uncompressed costs less CPU than gzip on both ends.
        self.headers = {"User-Agent": USER_AGENT, "Accept": "application/json", "Accept-Encoding": "identity"}

    def _key(self, refresh: bool, deadline: float) -> str:
        if self.api_key is None:
            raise MissingKey("NOVU_API_KEY is not set")
        return self.api_key.refresh(deadline) if refresh else self.api_key.get(deadline)

    def _send(self, method, path, encoded_body, timeout, key: str, *, idempotent: bool):
        """Novu's response: a ``NovuResponse``, or through requests' adapter its Response (the same fields)."""
        headers = {**self.headers, "Authorization": "ApiKey " + key}
        if encoded_body is not None:
            headers["Content-Type"] = "application/json"
            headers["Content-Length"] = str(len(encoded_body))
        if idempotent:
            headers["Idempotency-Key"] = idempotency_key(path, encoded_body or b"")
        # Through the transport the second limit bounds the whole call, connecting included.
        timeouts = (min(1.0, timeout), timeout)
        if self.via_session:
            return self.session.request(method, self.base_url + path, headers=headers, data=encoded_body,
                                        timeout=timeouts, allow_redirects=False)
        # Straight to the transport mounted for Novu's URL: no cookies, hooks or redirects apply to these
        # calls, so the session's Request, PreparedRequest and Response layers are skipped.
        return self.transport.exchange(method, self.base_url + path, headers, encoded_body, timeouts)

    def call(self, method: str, path: str, body, deadline: float, *, idempotent: bool = False
             ) -> Response | OperationResult:
        """One Novu request with the recoveries that fit in the deadline: a re-read key after 401,
        a wait on 409, a resend without Idempotency-Key after a replayed failure.
        Returns the response, or an OperationResult when the call cannot give one."""
        encoded_body = None if body is None else encode(body)
        refresh_key = False
        attempts = 0
        while True:
            attempts += 1
            if deadline - time.monotonic() < MIN_CALL_SECONDS:
                return OperationResult(RETRY, "not sent: the deadline for answering Segment was reached")
            try:
                key = self._key(refresh_key, deadline)
            except MissingKey:
                return OperationResult(MISCONFIGURED, "NOVU_API_KEY is not set: set it to the Novu secret key "
                                             "or to a Secret Manager name")
            except SecretUnavailable as error:
                return OperationResult(RETRY, f"Novu API key unavailable: {error}")
            except SecretMisconfigured as error:
                return OperationResult(MISCONFIGURED, str(error))
            # Measured after the key: re-reading it may have taken part of the time left.
            remaining = deadline - time.monotonic()
            if remaining < MIN_CALL_SECONDS:
                return OperationResult(RETRY, "not sent: the deadline for answering Segment was reached")
            timeout = min(self.timeout_seconds, remaining)
            try:
                response = self._send(method, path, encoded_body, timeout, key, idempotent=idempotent)
            except requests.Timeout:
                return OperationResult(RETRY, "Novu did not answer in time")
            except requests.exceptions.SSLError as error:
                if "certificate verify failed" in str(error).lower():
                    reason = ("could not connect to Novu: its TLS certificate is not trusted (a private CA: name "
                              "its bundle in REQUESTS_CA_BUNDLE or SSL_CERT_FILE)")
                    return OperationResult(RETRY, reason)
                return OperationResult(RETRY, "could not connect to Novu")
            except requests.ConnectionError:
                return OperationResult(RETRY, "could not connect to Novu")
            except ResponseTooLarge:
                return OperationResult(RETRY, f"Novu's answer is larger than {MAX_RESPONSE_BYTES} bytes: not read")
            except requests.RequestException as error:
                return OperationResult(RETRY, f"Novu request failed: {type(error).__name__}")
            if attempts > 3:
                return response
            status = response.status_code
            if status in (401, 403) and not refresh_key and self.api_key is not None and self.api_key.is_managed:
                refresh_key = True
                continue
            if status == 409:
                wait = header_seconds(response.headers.get("Retry-After"), 1.0)
                if time.monotonic() + wait + MIN_CALL_SECONDS < deadline:
                    time.sleep(wait)
                    continue
            if status >= 500 and idempotent and response.headers.get("Idempotency-Replay", "").lower() == "true":
                idempotent = False
                continue
            return response
