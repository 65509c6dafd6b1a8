"""The mapping file: which workflows an event triggers, read and validated once at start.

Format (JSON)::

    {
      "defaultRule": true,
      "track": {
        "Order Completed": ["order-confirmation", "receipt-email"],
        "Signed Up": "welcome",
        "Button Clicked": {"ignore": true}
      }
    }

``defaultRule`` (default true) derives a workflow from any unmapped event name ("Order Completed" →
``order-completed``). A ``track`` entry names one workflow, a list of them (fan-out), an object
``{"workflows": [...]}``, or ``{"ignore": true}``. A broken file is reported with its location.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WORKFLOW_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_TOP_LEVEL = ("defaultRule", "track", "$comment")


class MappingError(Exception):
    """The mapping file is unusable; the message says where and why."""


@dataclass(frozen=True)
class EventRule:
    workflows: tuple[str, ...] = ()
    ignore: bool = False


@dataclass(frozen=True)
class Rules:
    default_rule: bool = True
    track: dict[str, EventRule] = field(default_factory=dict)
    source: str = "built-in defaults"

    @property
    def workflows(self) -> set[str]:
        return {workflow for rule in self.track.values() for workflow in rule.workflows}


def _workflow(value: Any, where: str) -> str:
    if not isinstance(value, str) or not WORKFLOW_IDENTIFIER.match(value):
        raise MappingError(f"{where}: a workflow identifier must be a non-empty string of letters, "
                           f"digits, '-', '_', '.' or ':', got {json.dumps(value)[:60]}")
    return value


def _event_rule(value: Any, where: str) -> EventRule:
    if isinstance(value, str):
        return EventRule(workflows=(_workflow(value, where),))
    if isinstance(value, list):
        if not value:
            raise MappingError(f"{where}: an empty list triggers nothing; use {{\"ignore\": true}}")
        return EventRule(workflows=tuple(_workflow(item, f"{where}[{i}]") for i, item in enumerate(value)))
    if isinstance(value, dict):
        unknown = set(value) - {"workflows", "ignore"}
        if unknown:
            raise MappingError(f"{where}: unknown key {sorted(unknown)[0]!r} (allowed: workflows, ignore)")
        ignore = value.get("ignore", False)
        if not isinstance(ignore, bool):
            raise MappingError(f"{where}.ignore: must be true or false")
        if ignore:
            if "workflows" in value:
                raise MappingError(f"{where}: ignore and workflows together make no sense")
            return EventRule(ignore=True)
        if "workflows" not in value:
            raise MappingError(f"{where}: needs workflows or ignore")
        return _event_rule(value["workflows"], f"{where}.workflows")
    raise MappingError(f"{where}: expected a workflow, a list of workflows or an object")


def parse(document: Any, source: str) -> Rules:
    if not isinstance(document, dict):
        raise MappingError(f"{source}: the mapping must be a JSON object")
    unknown = set(document) - set(_TOP_LEVEL)
    if unknown:
        raise MappingError(f"{source}: unknown key {sorted(unknown)[0]!r} (allowed: defaultRule, track)")
    default_rule = document.get("defaultRule", True)
    if not isinstance(default_rule, bool):
        raise MappingError(f"{source}: defaultRule must be true or false")
    track = document.get("track", {})
    if not isinstance(track, dict):
        raise MappingError(f"{source}: track must be an object of event name → workflows")
    rules = {
        name: _event_rule(value, f"{source}: track.{json.dumps(name)}") for name, value in track.items()
    }
    return Rules(default_rule=default_rule, track=rules, source=source)


def load(path: Path | None) -> Rules:
    if path is None:
        return Rules()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise MappingError(f"MAPPING_FILE {path}: cannot be read ({error.strerror or error})") from None
    try:
        document = json.loads(text)
    except ValueError as error:
        raise MappingError(f"{path.name}: not valid JSON: {error}") from None
    return parse(document, path.name)
