"""The sandbox's workflows file, and the templating of an in-app step's content.

The file is JSON: ``{"workflows": [{"workflowId", "name"?, "tags"?, "inApp"?: {...}}]}``. ``inApp``
holds the in-app step's controls as Novu's dashboard names them: ``subject``, ``body``,
``primaryAction`` / ``secondaryAction`` (``{"label", "redirect"?: {"url", "target"?}}``), ``redirect``,
``data`` (scalar values only, at most 10 keys, as Novu allows), ``severity``, ``avatar``. A workflow
without ``inApp`` is triggered but shows nothing in the Inbox. Keys starting with ``$`` are notes.

Every string control is a template: ``{{payload.x}}``, ``{{payload.order.id}}``,
``{{subscriber.firstName}}``. As in Novu's Liquid, a missing value renders as nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

SEVERITIES = ("high", "medium", "low", "none")
DATA_KEYS_LIMIT = 10
DATA_STRING_LIMIT = 256
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w-]*(?:\.[\w-]+)*)\s*\}\}")
_IN_APP_KEYS = {"subject", "body", "primaryAction", "secondaryAction", "redirect", "data", "severity", "avatar"}


class WorkflowsError(Exception):
    """The workflows file is unreadable or malformed; the message says where."""


@dataclass(frozen=True)
class Workflow:
    identifier: str
    name: str
    tags: tuple[str, ...] = ()
    in_app: dict | None = field(default=None)


def _check_action(where: str, action) -> None:
    if not isinstance(action, dict) or not isinstance(action.get("label"), str):
        raise WorkflowsError(f"{where}: expected {{\"label\": text, \"redirect\"?: {{\"url\": text}}}}")
    _check_redirect(f"{where}.redirect", action.get("redirect"))


def _check_redirect(where: str, redirect) -> None:
    if redirect is not None and not (isinstance(redirect, dict) and isinstance(redirect.get("url"), str)):
        raise WorkflowsError(f"{where}: expected {{\"url\": text, \"target\"?: text}}")


def _check_in_app(where: str, in_app) -> dict:
    if not isinstance(in_app, dict):
        raise WorkflowsError(f"{where}: expected an object")
    unknown = sorted(key for key in in_app if key not in _IN_APP_KEYS and not key.startswith("$"))
    if unknown:
        raise WorkflowsError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_IN_APP_KEYS))})")
    if not isinstance(in_app.get("body"), str):
        raise WorkflowsError(f"{where}.body: the in-app step needs a body (text)")
    for key in ("subject", "avatar"):
        if key in in_app and not isinstance(in_app[key], str):
            raise WorkflowsError(f"{where}.{key}: expected text")
    for key in ("primaryAction", "secondaryAction"):
        if key in in_app:
            _check_action(f"{where}.{key}", in_app[key])
    _check_redirect(f"{where}.redirect", in_app.get("redirect"))
    if in_app.get("severity", "none") not in SEVERITIES:
        raise WorkflowsError(f"{where}.severity: one of {', '.join(SEVERITIES)}")
    data = in_app.get("data", {})
    if not isinstance(data, dict) or len(data) > DATA_KEYS_LIMIT or not all(
        value is None or isinstance(value, (str, int, float, bool)) for value in data.values()
    ):
        raise WorkflowsError(f"{where}.data: at most {DATA_KEYS_LIMIT} keys with scalar values (Novu's limit)")
    return {key: value for key, value in in_app.items() if not key.startswith("$")}


def parse_workflows(document) -> list[Workflow]:
    if not isinstance(document, dict) or not isinstance(document.get("workflows"), list):
        raise WorkflowsError('expected {"workflows": [...]}')
    workflows, seen = [], set()
    for index, item in enumerate(document["workflows"]):
        where = f"workflows[{index}]"
        if not isinstance(item, dict):
            raise WorkflowsError(f"{where}: expected an object")
        identifier = item.get("workflowId")
        if not isinstance(identifier, str) or not _IDENTIFIER.match(identifier):
            raise WorkflowsError(f"{where}.workflowId: letters, digits, - and _, 1 to 100 of them")
        if identifier in seen:
            raise WorkflowsError(f"{where}.workflowId: {identifier!r} appears twice")
        seen.add(identifier)
        tags = item.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise WorkflowsError(f"{where}.tags: expected a list of text")
        in_app = _check_in_app(f"{where}.inApp", item["inApp"]) if "inApp" in item else None
        workflows.append(Workflow(identifier, str(item.get("name") or identifier), tuple(tags), in_app))
    return workflows


def load_workflows(path: str | Path) -> list[Workflow]:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise WorkflowsError(f"{path}: {error}") from None
    try:
        return parse_workflows(document)
    except WorkflowsError as error:
        raise WorkflowsError(f"{path}: {error}") from None


def _text(value) -> str:
    if value is None or isinstance(value, (dict, list)) and not value:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _lookup(variables: dict, path: str):
    value = variables
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def render(template: str, variables: dict) -> str:
    """``template`` with every ``{{path}}`` replaced by its value in ``variables`` (missing: nothing)."""
    return _PLACEHOLDER.sub(lambda match: _text(_lookup(variables, match.group(1))), template)


def _render_action(action: dict, variables: dict) -> dict:
    rendered = {"label": render(action["label"], variables)}
    if action.get("redirect"):
        rendered["redirect"] = _render_redirect(action["redirect"], variables)
    return rendered


def _render_redirect(redirect: dict, variables: dict) -> dict:
    rendered = {"url": render(redirect["url"], variables)}
    if "target" in redirect:
        rendered["target"] = redirect["target"]
    return rendered


def render_in_app(in_app: dict, variables: dict) -> dict:
    """The in-app step's content for one recipient: every control rendered."""
    content = {"body": render(in_app["body"], variables), "severity": in_app.get("severity", "none")}
    for key in ("subject", "avatar"):
        if key in in_app:
            content[key] = render(in_app[key], variables)
    for key in ("primaryAction", "secondaryAction"):
        if key in in_app:
            content[key] = _render_action(in_app[key], variables)
    if in_app.get("redirect"):
        content["redirect"] = _render_redirect(in_app["redirect"], variables)
    content["data"] = {
        key: render(value, variables)[:DATA_STRING_LIMIT] if isinstance(value, str) else value
        for key, value in (in_app.get("data") or {}).items()
    }
    return content
