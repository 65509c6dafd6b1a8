"""Segment events for tests: small, valid, and distinct unless asked otherwise."""

from __future__ import annotations


def track(index: int, *, user: str | None = None, event: str = "Order Completed", **extra) -> dict:
    return {
        "type": "track",
        "messageId": f"msg-{index}",
        "userId": user or f"user-{index}",
        "event": event,
        "properties": {"orderId": f"order-{index}"},
        **extra,
    }


def identify(index: int, *, user: str, **traits) -> dict:
    return {"type": "identify", "messageId": f"id-{index}", "userId": user, "traits": traits}


def delete(index: int, *, user: str) -> dict:
    return {"type": "delete", "messageId": f"del-{index}", "userId": user}


def tracks(count: int, start: int = 0) -> list[dict]:
    return [track(index) for index in range(start, start + count)]
