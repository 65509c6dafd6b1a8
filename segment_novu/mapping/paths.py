"""Paths into a Segment event, as the mapping file writes them: ``properties.order.id``,
``context.traits.email``, ``properties.products[0].sku``, ``traits["total billed"]``.

A path is names joined by dots; ``[n]`` takes item n (from 0) of a list; ``["any key"]`` (a JSON
string) names a key holding spaces, dots, brackets or quotes. It resolves against the whole event.
A path that leads nowhere, or to ``null``, is ``MISSING``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_NAME = re.compile(r'[^.\[\]"\s]+')
_INDEX = re.compile(r"\[(\d+)\]")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class PathError(ValueError):
    """The text is not a path; the message says where it breaks."""


@dataclass(frozen=True)
class Path:
    text: str
    steps: tuple[str | int, ...]

    def __str__(self) -> str:
        return self.text

    def resolve(self, document: Any) -> Any:
        value = document
        for step in self.steps:
            if isinstance(step, int):
                if not isinstance(value, list) or step >= len(value):
                    return MISSING
            elif not isinstance(value, dict) or step not in value:
                return MISSING
            value = value[step]
        return MISSING if value is None else value


def _quoted_key(text: str, start: int) -> tuple[str, int]:
    """The key of ``["..."]`` opening at ``start``, and where the path goes on after ``]``."""
    try:
        key, end = json.JSONDecoder().raw_decode(text, start + 1)
    except ValueError:
        raise PathError(f"unterminated quoted key at character {start + 2}") from None
    if not text.startswith("]", end):
        raise PathError(f"expected ] at character {end + 1}")
    return key, end + 1


def parse(text: Any) -> Path:
    if not isinstance(text, str) or not text:
        raise PathError("a path must be a non-empty string")
    steps: list[str | int] = []
    position = 0
    while position < len(text):
        if text.startswith('["', position):
            key, position = _quoted_key(text, position)
            steps.append(key)
        elif text.startswith("[", position):
            index = _INDEX.match(text, position)
            if index is None:
                raise PathError(f'expected [n] or ["key"] at character {position + 1}')
            steps.append(int(index.group(1)))
            position = index.end()
        else:
            if steps:
                if not text.startswith(".", position):
                    raise PathError(f"unexpected {text[position]!r} at character {position + 1}")
                position += 1
            name = _NAME.match(text, position)
            if name is None:
                shown = repr(text[position]) if position < len(text) else "the end"
                raise PathError(f"expected a name at character {position + 1}, found {shown}")
            steps.append(name.group())
            position = name.end()
    return Path(text, tuple(steps))
