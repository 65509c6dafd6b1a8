"""The server-side half of Novu's Inbox: the subscriber hash a page needs when HMAC is on.

With HMAC on (Novu's In-App integration, "Security HMAC encryption"), Novu opens an Inbox session
only when the page passes ``subscriberHash`` = the lowercase hex HMAC-SHA256 of the subscriber id,
keyed with the environment's secret key. The page must never hold that key: the hash is computed on
a server (this function, or ``python -m segment_novu subscriber-hash``) and handed to the page.
"""

from __future__ import annotations

import hashlib
import hmac


def subscriber_hash(secret_key: str, subscriber_id: str) -> str:
    """Novu's formula: ``createHmac('sha256', secretKey).update(subscriberId).digest('hex')``."""
    if not secret_key:
        raise ValueError("the Novu secret key is empty")
    return hmac.new(secret_key.encode("utf-8"), str(subscriber_id).encode("utf-8"), hashlib.sha256).hexdigest()
