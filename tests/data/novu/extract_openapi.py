#!/usr/bin/env python3
"""Cut Novu's OpenAPI document down to the operations the bridge uses.

    python tests/data/novu/extract_openapi.py FULL_DOCUMENT.json [OUTPUT.json]

Reads Novu's full OpenAPI document (novu-ts SDK repo, ``sources/json-development.json``) and writes
``openapi.json`` beside this script (or OUTPUT) holding only:

- ``openapi``, ``info``, ``servers`` and the top-level ``security`` requirement;
- the paths and methods in ``OPERATIONS`` below, verbatim;
- every component they reference, transitively (each ``$ref`` is followed), in the source's order;
- every security scheme (``components.securitySchemes``).

The output is deterministic (same input → same bytes), so regenerating it shows a reviewable diff.
Standard library only. Exit status 1 when an operation or a referenced component is missing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OPERATIONS = {
    "/v1/events/trigger": ("post",),
    "/v1/events/trigger/bulk": ("post",),
    "/v1/events/trigger/{transactionId}": ("delete",),
    "/v2/subscribers": ("post",),
    "/v2/subscribers/{subscriberId}": ("patch", "delete"),
    "/v1/subscribers/{subscriberId}/credentials": ("put", "patch"),
    "/v2/topics": ("post",),
    "/v2/topics/{topicKey}/subscriptions": ("post", "delete"),
    "/v2/workflows": ("get",),
}
TOP_LEVEL = ("openapi", "info", "servers", "security")
# Path-item keys that apply to every method of the path; kept when present.
PATH_ITEM_SHARED = ("summary", "description", "servers", "parameters")
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "openapi.json"


class ExtractError(Exception):
    pass


def _refs(node):
    """Every ``$ref`` string inside a JSON value."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _component(document: dict, ref: str):
    """``#/components/<kind>/<name>`` → (kind, name), checked to exist."""
    parts = ref.split("/")
    if len(parts) != 4 or parts[:2] != ["#", "components"]:
        raise ExtractError(f"unsupported $ref {ref!r}: only local '#/components/<kind>/<name>' refs are followed")
    kind, name = (part.replace("~1", "/").replace("~0", "~") for part in parts[2:])
    if name not in document.get("components", {}).get(kind, {}):
        raise ExtractError(f"$ref {ref!r} points to nothing in the source document")
    return kind, name


def extract(document: dict) -> dict:
    paths = {}
    for path, methods in OPERATIONS.items():
        item = document.get("paths", {}).get(path)
        if item is None:
            raise ExtractError(f"path {path} is not in the source document")
        kept = {key: item[key] for key in PATH_ITEM_SHARED if key in item}
        for method in methods:
            if method not in item:
                raise ExtractError(f"{method.upper()} {path} is not in the source document")
            kept[method] = item[method]
        paths[path] = kept

    needed: set[tuple[str, str]] = set()
    pending = list(_refs(paths))
    while pending:
        key = _component(document, pending.pop())
        if key in needed:
            continue
        needed.add(key)
        kind, name = key
        pending.extend(_refs(document["components"][kind][name]))

    components = {}
    for kind, entries in document.get("components", {}).items():
        if kind == "securitySchemes":
            if any(True for _ in _refs(entries)):
                raise ExtractError("security schemes given by $ref are not supported")
            components[kind] = entries
            continue
        kept = {name: value for name, value in entries.items() if (kind, name) in needed}
        if kept:
            components[kind] = kept

    result = {key: document[key] for key in TOP_LEVEL if key in document}
    result["paths"] = paths
    result["components"] = components
    return result


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    source = Path(argv[1])
    output = Path(argv[2]) if len(argv) == 3 else DEFAULT_OUTPUT
    document = json.loads(source.read_text(encoding="utf-8"))
    try:
        extracted = extract(document)
    except ExtractError as error:
        print(f"{source}: {error}", file=sys.stderr)
        return 1
    text = json.dumps(extracted, indent=2, ensure_ascii=False) + "\n"
    output.write_text(text, encoding="utf-8")
    operations = sum(len(methods) for methods in OPERATIONS.values())
    schemas = sum(len(entries) for entries in extracted["components"].values())
    print(f"{output}: {operations} operations, {schemas} components, {len(text.encode())} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
