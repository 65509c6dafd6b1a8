"""The mapping file: what each Segment event becomes in Novu, read and validated once at start.

docs/mapping.md is the reference. In short::

    {
      "defaultRule": true,
      "track": {
        "Order Completed": [
          {"workflow": "order-confirmation",
           "payload": {"orderId": "properties.order_id", "total": {"path": "properties.total", "default": 0}}},
          {"workflow": "big-order-alert", "when": {"path": "properties.total", "equals": 1000},
           "topic": "properties.teamId"}
        ],
        "Signed Up": "welcome",
        "Button Clicked": {"ignore": true}
      },
      "page": {"Pricing": "pricing-follow-up"},
      "screen": {},
      "group": {"topicKey": "groupId", "topicName": "traits.name"},
      "devices": {"providerId": "fcm"}
    }

Everything is checked here, so a broken file stops the function with a message naming the place
(``mapping.json: track."Order Completed"[0].payload."total": ...``), never a guess at what was meant.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

from segment_novu.mapping import paths
from segment_novu.mapping.paths import MISSING, Path

WORKFLOW_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
SEGMENT_KEY = "_segment"
PAYLOAD_MODES = ("merge", "replace")
RECIPIENT_FIELDS = ("subscriberId", "email", "firstName", "lastName", "phone", "avatar", "locale", "timezone")
# Novu's push providers (ChatOrPushProviderEnum in its OpenAPI document): a device token is a push credential.
PUSH_PROVIDERS = ("fcm", "apns", "expo", "one-signal", "pushpad", "push-webhook", "pusher-beams", "appio")
# Where a path may start: the fields of a Segment event (the Spec's common and per-type fields).
EVENT_FIELDS = (
    "type", "event", "name", "category", "properties", "traits", "context", "userId", "anonymousId",
    "messageId", "groupId", "previousId", "timestamp", "originalTimestamp", "sentAt", "receivedAt",
    "integrations", "channel", "version", "projectId", "_metadata",
)
_TOP_LEVEL = ("defaultRule", "track", "page", "screen", "group", "devices", "audiences")
_TARGET_KEYS = (
    "workflow", "when", "payload", "payloadMode", "to", "topic", "transactionKey", "actor", "tenant", "context",
    "overrides",
)
_CANCEL_KEYS = ("cancel", "transactionKey", "when")
# An event's entry can also be one trigger or one cancel written alone, without "workflows".
_SINGLE_ENTRY_FORMS = {"or one trigger alone": _TARGET_KEYS, "or one cancel alone": _CANCEL_KEYS}
_AUDIENCE_KEYS = ("topic", "ignore")
# Segment Engage's audience events (track), with properties.audience_key naming the audience.
AUDIENCE_ENTERED, AUDIENCE_EXITED = "Audience Entered", "Audience Exited"
_GROUP_KEYS = ("ignore", "topicKey", "topicName")
_DEVICE_KEYS = ("providerId", "integrationIdentifier", "when")


class MappingError(Exception):
    """The mapping file is unusable; the message says where and why."""


class MappingUnreadable(MappingError):
    """The mapping file cannot be read at all (missing, a folder, no permission)."""


@dataclass(frozen=True)
class Field:
    """A value taken from the event by path (the default when the path is missing), or a constant
    (no path: the default is the value)."""

    path: Path | None = None
    default: Any = MISSING

    def value(self, document: dict) -> Any:
        if self.path is None:
            return self.default
        found = self.path.resolve(document)
        return self.default if found is MISSING else found


def _same(found: Any, expected: Any) -> bool:
    # JSON keeps true and 1 apart; Python's == does not.
    if isinstance(found, bool) or isinstance(expected, bool):
        return type(found) is type(expected) and found == expected
    return found == expected


@dataclass(frozen=True)
class Condition:
    path: Path
    equals: Any = MISSING
    exists: bool | None = None

    def holds(self, document: dict) -> bool:
        found = self.path.resolve(document)
        if self.exists is not None:
            return (found is not MISSING) == self.exists
        return found is not MISSING and _same(found, self.equals)


@dataclass(frozen=True)
class Target:
    """One workflow an event triggers, and how: when, with what payload, to whom."""

    workflow: str
    when: tuple[Condition, ...] = ()
    payload: dict[str, Field] = field(default_factory=dict)
    payload_mode: str = "merge"
    to: dict[str, Field] = field(default_factory=dict)
    topic: Field | None = None
    # Its value, not the event's identity, makes the transactionId: what a cancel names.
    transaction_key: Field | None = None
    actor: Field | None = None
    tenant: Field | None = None
    context: dict[str, Field] = field(default_factory=dict)
    overrides: dict | None = None


@dataclass(frozen=True)
class Cancel:
    """Calls off the run a trigger of ``workflow`` with the same transaction key started."""

    workflow: str
    transaction_key: Field
    when: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class AudienceRule:
    """A Segment Engage audience → membership of a Novu topic (or ignored)."""

    ignore: bool = False
    topic: Field | None = None


@dataclass(frozen=True)
class EventRule:
    workflows: tuple[str, ...] = ()
    ignore: bool = False
    targets: tuple[Target, ...] = ()
    cancels: tuple[Cancel, ...] = ()

    def __post_init__(self):
        # The short forms name workflows only, the long form gives targets: each fills the other, so
        # "welcome" and [{"workflow": "welcome"}] are the same rule.
        if self.targets and not self.workflows:
            object.__setattr__(self, "workflows", tuple(target.workflow for target in self.targets))
        elif self.workflows and not self.targets:
            object.__setattr__(self, "targets", tuple(Target(workflow) for workflow in self.workflows))


@dataclass(frozen=True)
class GroupRule:
    """``group`` → a Novu topic the user is subscribed to."""

    ignore: bool = False
    topic_key: Field = Field(paths.parse("groupId"))
    topic_name: Field = Field(paths.parse("traits.name"))


@dataclass(frozen=True)
class DeviceRule:
    """Which Novu push provider receives ``context.device.token``."""

    provider_id: str
    integration_identifier: str | None = None
    when: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Rules:
    default_rule: bool = True
    track: dict[str, EventRule] = field(default_factory=dict)
    source: str = "built-in defaults"
    page: dict[str, EventRule] = field(default_factory=dict)
    screen: dict[str, EventRule] = field(default_factory=dict)
    group: GroupRule = GroupRule()
    devices: tuple[DeviceRule, ...] = ()
    audiences: dict[str, AudienceRule] = field(default_factory=dict)

    @property
    def workflows(self) -> set[str]:
        tables = (self.track, self.page, self.screen)
        return {workflow for table in tables for rule in table.values()
                for workflow in (*rule.workflows, *(cancel.workflow for cancel in rule.cancels))}


def _shown(value: Any) -> str:
    return json.dumps(value)[:60]


def _only_known_keys(value: dict, allowed: tuple[str, ...], where: str, *, other_forms: dict | None = None) -> None:
    """Refuses the first unknown key, naming every key allowed at that place (and in ``other_forms``:
    other ways to write the same entry) and the closest one."""
    unknown = sorted(key for key in value if key not in allowed)
    if not unknown:
        return
    key, other_forms = unknown[0], other_forms or {}
    candidates = [*allowed, *(name for keys in other_forms.values() for name in keys)]
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    if key in candidates:
        hint = " (it belongs to another form of this entry, not beside these keys)"
    else:
        hint = f" (did you mean {close[0]!r}?)" if close else ""
    forms = "".join(f"; {form}: {', '.join(keys)}" for form, keys in other_forms.items())
    raise MappingError(f"{where}: unknown key {key!r}{hint}; allowed here: {', '.join(allowed)}{forms}")


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise MappingError(f"{where}: must be true or false")
    return value


def _workflow(value: Any, where: str) -> str:
    if not isinstance(value, str) or not WORKFLOW_IDENTIFIER.match(value):
        raise MappingError(f"{where}: a workflow identifier must be a non-empty string of letters, "
                           f"digits, '-', '_', '.' or ':', got {_shown(value)}")
    return value


def _path(value: Any, where: str) -> Path:
    try:
        path = paths.parse(value)
    except paths.PathError as error:
        raise MappingError(f"{where}: {error} in {_shown(value)}") from None
    root = path.steps[0]
    if root not in EVENT_FIELDS:
        raise MappingError(f"{where}: {_shown(value)} does not start at a field of a Segment event "
                           f"(properties, traits, context, event, name, userId, …)")
    return path


def _field(value: Any, where: str, *, text_only: bool = False) -> Field:
    if isinstance(value, str):
        return Field(_path(value, where))
    if isinstance(value, dict) and "value" in value:
        _only_known_keys(value, ("value",), where)
        constant = value["value"]
        if text_only and (isinstance(constant, bool) or not isinstance(constant, (str, int, float))):
            raise MappingError(f"{where}.value: must be a string or a number, got {_shown(constant)}")
        return Field(None, constant)
    if isinstance(value, dict):
        _only_known_keys(value, ("path", "default"), where)
        if "path" not in value:
            raise MappingError(f"{where}: needs path (or value)")
        default = value.get("default", MISSING)
        if text_only and default is not MISSING and (
            isinstance(default, bool) or not isinstance(default, (str, int, float))
        ):
            raise MappingError(f"{where}.default: must be a string or a number, got {_shown(default)}")
        return Field(_path(value["path"], f"{where}.path"), default)
    raise MappingError(f'{where}: expected a path ("properties.total"), {{"path": …, "default": …}} '
                       f'or {{"value": …}}, got {_shown(value)}')


def _condition(value: Any, where: str) -> Condition:
    if not isinstance(value, dict):
        raise MappingError(f'{where}: expected {{"path": …, "equals": …}} or {{"path": …, "exists": true}}')
    _only_known_keys(value, ("path", "equals", "exists"), where)
    if "path" not in value:
        raise MappingError(f"{where}: needs path")
    path = _path(value["path"], f"{where}.path")
    if ("equals" in value) == ("exists" in value):
        raise MappingError(f"{where}: needs exactly one of equals or exists")
    if "exists" in value:
        return Condition(path, exists=_flag(value["exists"], f"{where}.exists"))
    if value["equals"] is None:
        raise MappingError(f'{where}.equals: null never matches (a null value is missing); use "exists": false')
    return Condition(path, equals=value["equals"])


def _conditions(value: Any, where: str) -> tuple[Condition, ...]:
    if isinstance(value, list):
        if not value:
            raise MappingError(f"{where}: an empty list; leave when out to always trigger")
        return tuple(_condition(item, f"{where}[{index}]") for index, item in enumerate(value))
    return (_condition(value, where),)


def _payload_fields(value: Any, where: str) -> dict[str, Field]:
    """A target's "payload" object: each key → where its value comes from."""
    if not isinstance(value, dict):
        raise MappingError(f"{where}: expected an object of payload key → path or value")
    fields = {}
    for key, spec in value.items():
        if not key:
            raise MappingError(f"{where}: a payload key cannot be empty")
        if key == SEGMENT_KEY:
            raise MappingError(f"{where}: {SEGMENT_KEY} is the bridge's own payload key")
        fields[key] = _field(spec, f"{where}.{json.dumps(key)}")
    return fields


def _recipient(value: Any, where: str) -> dict[str, Field]:
    if not isinstance(value, dict) or not value:
        raise MappingError(f"{where}: expected an object of subscriber field → path or value "
                           f"({', '.join(RECIPIENT_FIELDS)})")
    _only_known_keys(value, RECIPIENT_FIELDS, where)
    return {name: _field(spec, f"{where}.{name}", text_only=True) for name, spec in value.items()}


def _target(value: Any, where: str) -> Target:
    if not isinstance(value, dict):
        return Target(_workflow(value, where))
    _only_known_keys(value, _TARGET_KEYS, where)
    if "workflow" not in value:
        raise MappingError(f"{where}: needs workflow")
    if "to" in value and "topic" in value:
        raise MappingError(f"{where}: to and topic together: a trigger goes to the user (to) or to a topic")
    mode = value.get("payloadMode", "merge")
    if mode not in PAYLOAD_MODES:
        raise MappingError(f'{where}.payloadMode: must be "merge" or "replace", got {_shown(mode)}')
    overrides = value.get("overrides")
    if overrides is not None and not isinstance(overrides, dict):
        raise MappingError(f"{where}.overrides: expected an object of provider → settings, passed to Novu as it is")

    def text(key: str) -> Field | None:
        return _field(value[key], f"{where}.{key}", text_only=True) if key in value else None

    return Target(
        workflow=_workflow(value["workflow"], f"{where}.workflow"),
        when=_conditions(value["when"], f"{where}.when") if "when" in value else (),
        payload=_payload_fields(value["payload"], f"{where}.payload") if "payload" in value else {},
        payload_mode=mode,
        to=_recipient(value["to"], f"{where}.to") if "to" in value else {},
        topic=text("topic"),
        transaction_key=text("transactionKey"),
        actor=text("actor"),
        tenant=text("tenant"),
        context=_context(value["context"], f"{where}.context") if "context" in value else {},
        overrides=overrides,
    )


def _context(value: Any, where: str) -> dict[str, Field]:
    if not isinstance(value, dict) or not value:
        raise MappingError(f'{where}: expected an object of context type → id ({{"tenant": "properties.orgId"}})')
    for name in value:
        if not name:
            raise MappingError(f"{where}: a context type cannot be empty")
    return {name: _field(spec, f"{where}.{json.dumps(name)}", text_only=True) for name, spec in value.items()}


def _cancel(value: dict, where: str) -> Cancel:
    _only_known_keys(value, _CANCEL_KEYS, where)
    if "transactionKey" not in value:
        raise MappingError(f"{where}: a cancel needs the transactionKey its trigger was given")
    return Cancel(
        workflow=_workflow(value["cancel"], f"{where}.cancel"),
        transaction_key=_field(value["transactionKey"], f"{where}.transactionKey", text_only=True),
        when=_conditions(value["when"], f"{where}.when") if "when" in value else (),
    )


def _entry(value: Any, where: str) -> Target | Cancel:
    if isinstance(value, dict) and "cancel" in value:
        return _cancel(value, where)
    return _target(value, where)


def _refuse_repeats(targets: tuple, where: str) -> None:
    """Two entries alike in every field would be one call made twice: Novu takes it once."""
    for later, target in enumerate(targets):
        for earlier in range(later):
            if targets[earlier] == target:
                raise MappingError(
                    f"{where}[{later}]: the same trigger as [{earlier}] (workflow {target.workflow!r});"
                    " remove one, or make them differ (when, payload, to or topic)"
                )


def _event_rule(value: Any, where: str) -> EventRule:
    if isinstance(value, str):
        return EventRule(workflows=(_workflow(value, where),))
    if isinstance(value, list):
        if not value:
            raise MappingError(f"{where}: an empty list triggers nothing; use {{\"ignore\": true}}")
        entries = [_entry(item, f"{where}[{index}]") for index, item in enumerate(value)]
        _refuse_repeats(tuple(entries), where)
        targets = tuple(entry for entry in entries if isinstance(entry, Target))
        cancels = tuple(entry for entry in entries if isinstance(entry, Cancel))
        return EventRule(targets=targets, cancels=cancels)
    if isinstance(value, dict) and "workflow" in value:
        return EventRule(targets=(_target(value, where),))
    if isinstance(value, dict) and "cancel" in value:
        return EventRule(cancels=(_cancel(value, where),))
    if isinstance(value, dict):
        _only_known_keys(value, ("workflows", "ignore"), where, other_forms=_SINGLE_ENTRY_FORMS)
        ignore = _flag(value.get("ignore", False), f"{where}.ignore")
        if ignore:
            if "workflows" in value:
                raise MappingError(f"{where}: ignore and workflows together make no sense")
            return EventRule(ignore=True)
        if "workflows" not in value:
            raise MappingError(f"{where}: needs workflows or ignore")
        return _event_rule(value["workflows"], f"{where}.workflows")
    raise MappingError(f"{where}: expected a workflow, a list of workflows or an object")


def _event_table(document: dict, section: str, source: str) -> dict[str, EventRule]:
    table = document.get(section, {})
    noun = "event" if section == "track" else section
    if not isinstance(table, dict):
        raise MappingError(f"{source}: {section} must be an object of {noun} name → workflows")
    return {name: _event_rule(value, f"{source}: {section}.{json.dumps(name)}") for name, value in table.items()}


def _group(value: Any, where: str) -> GroupRule:
    if not isinstance(value, dict):
        raise MappingError(f'{where}: expected {{"ignore": true}} or {{"topicKey": …, "topicName": …}}')
    _only_known_keys(value, _GROUP_KEYS, where)
    if _flag(value.get("ignore", False), f"{where}.ignore"):
        if len(value) > 1:
            raise MappingError(f"{where}: ignore and topic settings together make no sense")
        return GroupRule(ignore=True)
    defaults = GroupRule()
    return GroupRule(
        topic_key=_field(value["topicKey"], f"{where}.topicKey", text_only=True)
        if "topicKey" in value else defaults.topic_key,
        topic_name=_field(value["topicName"], f"{where}.topicName", text_only=True)
        if "topicName" in value else defaults.topic_name,
    )


def _device(value: Any, where: str) -> DeviceRule:
    if not isinstance(value, dict):
        raise MappingError(f'{where}: expected {{"providerId": "fcm"}} (or a list of those)')
    _only_known_keys(value, _DEVICE_KEYS, where)
    provider = value.get("providerId")
    if provider not in PUSH_PROVIDERS:
        raise MappingError(f"{where}.providerId: must be one of Novu's push providers "
                           f"({', '.join(PUSH_PROVIDERS)}), got {_shown(provider)}")
    integration = value.get("integrationIdentifier")
    if integration is not None and (not isinstance(integration, str) or not integration.strip()):
        raise MappingError(f"{where}.integrationIdentifier: must be a non-empty string")
    when = _conditions(value["when"], f"{where}.when") if "when" in value else ()
    return DeviceRule(provider_id=provider, integration_identifier=integration, when=when)


def _devices(value: Any, where: str) -> tuple[DeviceRule, ...]:
    if isinstance(value, list):
        if not value:
            raise MappingError(f"{where}: an empty list; leave devices out to ignore device tokens")
        return tuple(_device(item, f"{where}[{index}]") for index, item in enumerate(value))
    return (_device(value, where),)


def _audiences(value: Any, where: str) -> dict[str, AudienceRule]:
    if not isinstance(value, dict):
        raise MappingError(f'{where}: expected an object of audience key → {{"topic": …}} or {{"ignore": true}}')
    audiences = {}
    for key, spec in value.items():
        at = f"{where}.{json.dumps(key)}"
        if not key:
            raise MappingError(f"{where}: an audience key cannot be empty")
        if not isinstance(spec, dict):
            raise MappingError(f'{at}: expected {{"topic": …}} or {{"ignore": true}}')
        _only_known_keys(spec, _AUDIENCE_KEYS, at)
        ignore = _flag(spec.get("ignore", False), f"{at}.ignore")
        if ignore == ("topic" in spec):
            raise MappingError(f"{at}: needs exactly one of topic or ignore")
        audiences[key] = AudienceRule(
            ignore=ignore, topic=None if ignore else _field(spec["topic"], f"{at}.topic", text_only=True)
        )
    return audiences


def parse(document: Any, source: str) -> Rules:
    if not isinstance(document, dict):
        raise MappingError(f"{source}: the mapping must be a JSON object")
    _only_known_keys({key: None for key in document if not key.startswith("$")}, _TOP_LEVEL, source)
    default_rule = document.get("defaultRule", True)
    if not isinstance(default_rule, bool):
        raise MappingError(f"{source}: defaultRule must be true or false")
    return Rules(
        default_rule=default_rule,
        track=_event_table(document, "track", source),
        source=source,
        page=_event_table(document, "page", source),
        screen=_event_table(document, "screen", source),
        group=_group(document["group"], f"{source}: group") if "group" in document else GroupRule(),
        devices=_devices(document["devices"], f"{source}: devices") if "devices" in document else (),
        audiences=_audiences(document["audiences"], f"{source}: audiences") if "audiences" in document else {},
    )


def load(path: FilePath | None) -> Rules:
    if path is None:
        return Rules()
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise MappingUnreadable(f"MAPPING_FILE {path}: cannot be read ({error.strerror or error})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise MappingError(f"{path.name}: not UTF-8 text (byte {error.start})") from None
    try:
        document = json.loads(text)
    except ValueError as error:
        raise MappingError(f"{path.name}: not valid JSON: {error}") from None
    return parse(document, path.name)
