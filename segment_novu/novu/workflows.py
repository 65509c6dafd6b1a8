"""Workflow discovery: which workflow identifiers exist in Novu (``GET /v2/workflows``), cached.

The planner skips a default-rule event whose workflow Novu does not have, without a Novu call, so
events nobody built a workflow for cost none of the customer's rate limit. Discovery never blocks
delivery: a list that cannot be read (Novu down, key refused, too slow for the request) means
"unknown", and every trigger is sent as if discovery were off.
"""

from __future__ import annotations

import json
import threading
import time

from segment_novu import logs
from segment_novu.novu.client import NovuClient
from segment_novu.novu.responses import error_message, unwrap
from segment_novu.reply.outcomes import OperationResult

WORKFLOWS_PATH = "/v2/workflows"
PAGE_SIZE = 100
MAX_PAGES = 100
# A fetch on a request's path may take this long at most (and never past the request's deadline).
FETCH_SECONDS = 1.0
# After a failed fetch, triggers go out without the list for this long before the next attempt.
RETRY_AFTER_FAILURE_SECONDS = 10.0
# A burst of workflow_not_found answers refreshes the list once, not once per answer.
MIN_REFRESH_SECONDS = 5.0
# A workflow the list lacks has the list read again first when it is older than this, so a workflow
# created in Novu is seen within these seconds; events for workflows nobody built cost one list read
# per this many seconds, not one trigger each.
RECHECK_SECONDS = 5.0


class CatalogUnavailable(Exception):
    """Novu's workflow list cannot be read; the message says why."""


def _identifiers(page) -> tuple[list[str], int | None]:
    if not isinstance(page, dict) or not isinstance(page.get("workflows"), list):
        raise CatalogUnavailable("Novu's workflow list has an unexpected shape")
    identifiers = [
        item["workflowId"]
        for item in page["workflows"]
        if isinstance(item, dict) and isinstance(item.get("workflowId"), str)
    ]
    total = page.get("totalCount")
    return identifiers, total if isinstance(total, int) and not isinstance(total, bool) else None


def list_workflows(client: NovuClient, deadline: float) -> frozenset[str]:
    """Every workflow identifier Novu has, page by page, all within ``deadline``."""
    found: set[str] = set()
    offset = 0
    for _ in range(MAX_PAGES):
        path = f"{WORKFLOWS_PATH}?limit={PAGE_SIZE}&offset={offset}"
        response = client.call("GET", path, None, deadline)
        if isinstance(response, OperationResult):
            raise CatalogUnavailable(response.reason)
        if not 200 <= response.status_code < 300:
            raise CatalogUnavailable(f"Novu answered {response.status_code}: {error_message(response)}")
        try:
            page = unwrap(json.loads(response.content))
        except ValueError:
            raise CatalogUnavailable("Novu's workflow list is not JSON") from None
        identifiers, total = _identifiers(page)
        found.update(identifiers)
        offset += len(page["workflows"])
        if len(page["workflows"]) < PAGE_SIZE or (total is not None and offset >= total):
            return frozenset(found)
    raise CatalogUnavailable(f"Novu lists more than {PAGE_SIZE * MAX_PAGES} workflows")


class WorkflowCatalog:
    """The set of workflow identifiers Novu has, read at most once per ``ttl_seconds``. Thread-safe:
    while one request fetches, the others go on with what was known before."""

    def __init__(self, client: NovuClient, *, ttl_seconds: float):
        self.client = client
        self.ttl_seconds = ttl_seconds
        self._lock = threading.Lock()
        self._usable: frozenset[str] | None = None
        self._fetched_at = float("-inf")
        self._expires = float("-inf")
        self._fetching = False

    def refresh(self, deadline: float) -> frozenset[str] | None:
        """Read the list now (within ``deadline``) and cache it; None when it cannot be read."""
        try:
            workflows = list_workflows(self.client, min(deadline, time.monotonic() + FETCH_SECONDS))
        except CatalogUnavailable as error:
            logs.warning("workflow discovery: Novu's workflow list cannot be read; triggers are sent without it",
                         reason=str(error))
            self._store(None, RETRY_AFTER_FAILURE_SECONDS)
            return None
        if not workflows:
            # An empty list would skip every default-rule event on Novu's word alone; without it,
            # Novu's own workflow_not_found gives the same outcome at the cost of one call.
            logs.warning("workflow discovery: Novu lists no workflow; triggers are sent without the list")
        self._store(workflows or None, self.ttl_seconds)
        return workflows

    def known(self, deadline: float) -> frozenset[str] | None:
        """The identifiers to plan with: cached, refreshed when stale; None when unknown."""
        with self._lock:
            if self._fetching or time.monotonic() < self._expires:
                return self._usable
            self._fetching = True
        try:
            self.refresh(deadline)
        finally:
            with self._lock:
                self._fetching = False
        with self._lock:
            return self._usable

    def recheck(self, deadline: float) -> frozenset[str] | None:
        """A workflow the list lacks: the list read again if it is older than ``RECHECK_SECONDS``
        (and no other request is reading it), else the list as it is."""
        with self._lock:
            if self._fetching or time.monotonic() - self._fetched_at < RECHECK_SECONDS:
                return self._usable
            self._fetching = True
        try:
            self.refresh(deadline)
        finally:
            with self._lock:
                self._fetching = False
        with self._lock:
            return self._usable

    def invalidate(self) -> None:
        """Novu did not know a workflow the list may have promised: read the list again soon."""
        with self._lock:
            self._expires = min(self._expires, self._fetched_at + MIN_REFRESH_SECONDS)

    def _store(self, usable: frozenset[str] | None, lifetime: float) -> None:
        with self._lock:
            now = time.monotonic()
            self._usable = usable
            self._fetched_at = now
            self._expires = now + lifetime
