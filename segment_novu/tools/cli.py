"""``python -m segment_novu check``, ``replay FILE`` and ``subscriber-hash``: tools for people.

Both read the same environment variables as the function (docs/configuration.md).
Exit status, for every command: 0 all good; 1 something to fix (a broken mapping, a workflow missing
in Novu, events refused or still failing); 2 the command could not do its job (usage, configuration,
Novu's workflow list unreadable, an unreadable file).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from segment_novu import config, inbox, logs
from segment_novu.bridge import Bridge
from segment_novu.mapping import rules
from segment_novu.mapping.rules import MappingError, MappingUnreadable, Rules
from segment_novu.novu.client import NovuClient
from segment_novu.novu.workflows import CatalogUnavailable, list_workflows
from segment_novu.secrets import (
    ChecksumMismatch,
    SecretMisconfigured,
    SecretSource,
    SecretUnavailable,
)
from segment_novu.tools.replay import Replay, ReplayError, read_events

OK, PROBLEMS, CANNOT = 0, 1, 2
CHECK_SECONDS = 30.0


def _settings(arguments) -> config.Settings:
    settings = config.load()
    if arguments.mapping:
        settings = dataclasses.replace(settings, mapping_file=Path(arguments.mapping).resolve())
    return settings


def _mapped(loaded: Rules) -> list[tuple[str, str, tuple[str, ...]]]:
    """(section, name, workflows) for every mapped event, the workflows its cancels name included;
    ignored ones with no workflow."""
    return [
        (section, name, (*rule.workflows, *(cancel.workflow for cancel in rule.cancels)))
        for section, table in (("track", loaded.track), ("page", loaded.page), ("screen", loaded.screen))
        for name, rule in table.items()
    ]


_TARGET_OPTIONS = (("transaction_key", "transactionKey"), ("actor", "actor"), ("tenant", "tenant"),
                   ("context", "context"), ("overrides", "overrides"))


def _entry_summary(rule) -> str:
    """What an entry does: its workflows (with the trigger fields each sets) and what it cancels."""
    if rule.ignore:
        return "(ignored)"
    parts = []
    for target in rule.targets:
        options = [name for attribute, name in _TARGET_OPTIONS if getattr(target, attribute)]
        parts.append(target.workflow + (f" ({', '.join(options)})" if options else ""))
    parts += [f"cancels {cancel.workflow}" for cancel in rule.cancels]
    return ", ".join(parts)


def _describe(loaded: Rules) -> list[str]:
    tables = (("track", loaded.track), ("page", loaded.page), ("screen", loaded.screen))
    lines = [f"  {section} {json.dumps(name)} → {_entry_summary(rule)}"
             for section, table in tables for name, rule in table.items()]
    lines.append("  other track events → their name as a slug (the default rule)" if loaded.default_rule
                 else "  other track events → skipped (the default rule is off)")
    lines.append("  group → skipped (ignored)" if loaded.group.ignore
                 else f"  group → the user subscribed to the topic from {loaded.group.topic_key.path or 'a constant'}")
    if loaded.devices:
        providers = ", ".join(device.provider_id for device in loaded.devices)
        lines.append(f"  context.device.token → push credentials ({providers})")
    for key, audience in loaded.audiences.items():
        topic = audience.topic
        if audience.ignore or topic is None:
            lines.append(f"  audience {json.dumps(key)} → (ignored)")
            continue
        where = f"topic from {topic.path}" if topic.path is not None else f"topic {topic.default}"
        lines.append(f"  audience {json.dumps(key)} → {where} (entered: subscribed, exited: unsubscribed)")
    return lines


def _mapping_status(error: MappingError) -> int:
    """A broken mapping is something to fix; one that cannot be read stops the command."""
    return CANNOT if isinstance(error, MappingUnreadable) else PROBLEMS


def check(arguments) -> int:
    try:
        settings = _settings(arguments)
    except config.ConfigError as error:
        print(f"configuration error: {error}")
        return CANNOT
    print(f"mapping file: {settings.mapping_file or 'none (built-in defaults)'}")
    try:
        loaded = rules.load(settings.mapping_file)
    except MappingError as error:
        print(f"  {'unreadable' if isinstance(error, MappingUnreadable) else 'broken'}: {error}")
        return _mapping_status(error)
    print("  valid")
    print("\n".join(_describe(loaded)))
    if settings.novu_api_key is None:
        print("NOVU_API_KEY is not set: the workflows were not checked against Novu")
        return OK
    key = SecretSource(
        settings.novu_api_key,
        variable="NOVU_API_KEY",
        ttl_seconds=settings.secret_ttl_seconds,
        emulator_host=settings.secret_manager_emulator_host,
    )
    client = NovuClient(settings.novu_api_url, key, timeout_seconds=settings.novu_timeout_seconds)
    try:
        known = list_workflows(client, time.monotonic() + CHECK_SECONDS)
    except CatalogUnavailable as error:
        print(f"Novu {settings.novu_api_url}: cannot read the workflow list: {error}")
        return CANNOT
    print(f"Novu {settings.novu_api_url}: {len(known)} workflow{'' if len(known) == 1 else 's'}")
    missing = [
        (workflow, f"{section} {json.dumps(name)}")
        for section, name, workflows in _mapped(loaded)
        for workflow in workflows
        if workflow not in known
    ]
    for workflow, where in missing:
        print(f"  missing: {workflow} (for {where})")
    if missing:
        print(f"{len(missing)} workflow{'' if len(missing) == 1 else 's'} named in the mapping "
              f"{'does' if len(missing) == 1 else 'do'} not exist in Novu")
        return PROBLEMS
    print("every workflow the mapping names exists in Novu")
    return OK


def _progress(total: int):
    def show(done: int) -> None:
        sys.stderr.write(f"\rreplayed {done}/{total} events")
        sys.stderr.flush()

    return show


def _printer(out):
    def print_requests(requests: list[dict]) -> None:
        for request in requests:
            print(json.dumps(request, ensure_ascii=False), file=out)

    return print_requests


def _report(summary, total: int, dry_run: bool) -> int:
    print(("dry run: nothing was sent to Novu\n" if dry_run else "") + summary.table())
    for entry in sorted(summary.not_delivered, key=lambda entry: entry.line):
        shown = f" (messageId {entry.message_id})" if entry.message_id else ""
        print(f"line {entry.line}{shown}: {entry.outcome}: {entry.reason}")
    if summary.stopped:
        print(f"stopped after {summary.count} of {total} events: {summary.stopped}")
    return PROBLEMS if summary.failed or summary.stopped else OK


def replay(arguments) -> int:
    try:
        settings = _settings(arguments)
    except config.ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return CANNOT
    if arguments.dry_run:
        settings = dataclasses.replace(settings, dry_run=True)
    if settings.novu_api_key is None and not settings.dry_run:
        print("NOVU_API_KEY is not set: set it, or use --dry-run to see the requests without sending them",
              file=sys.stderr)
        return CANNOT
    try:
        total, items = read_events(Path(arguments.file))
    except ReplayError as error:
        print(str(error), file=sys.stderr)
        return CANNOT
    logs.configure(settings.log_level if arguments.verbose else "CRITICAL")
    results = sys.stdout
    # The bridge logs JSON lines on stdout; here stdout carries the results, so logs go to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            bridge = Bridge(settings)
        except MappingError as error:
            print(f"mapping error: {error}")
            return _mapping_status(error)
        runner = Replay(
            bridge,
            chunk_size=arguments.chunk_size,
            retries=arguments.retries,
            on_requests=_printer(results),
            on_progress=_progress(total),
        )
        summary = runner.run(items)
        sys.stderr.write("\n")
    return _report(summary, total, settings.dry_run)


def subscriber_hash(arguments) -> int:
    """The Inbox's ``subscriberHash`` for one subscriber, keyed with ``NOVU_SECRET_KEY`` or else the
    function's own ``NOVU_API_KEY`` (a value or a Secret Manager name): the same secret key."""
    configured = os.environ.get("NOVU_SECRET_KEY", "").strip()
    if not configured:
        try:
            settings = config.load()
        except config.ConfigError as error:
            print(f"configuration error: {error}", file=sys.stderr)
            return CANNOT
        configured = settings.novu_api_key or ""
        emulator_host = settings.secret_manager_emulator_host
    else:
        emulator_host = os.environ.get("SECRET_MANAGER_EMULATOR_HOST") or None
    if not configured:
        print("set NOVU_SECRET_KEY (or NOVU_API_KEY) to the Novu environment's secret key", file=sys.stderr)
        return CANNOT
    try:
        # stdout carries only the hash: the secret reader's log line goes to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            key = SecretSource(configured, emulator_host=emulator_host, variable="the Novu secret key").get()
    except (SecretUnavailable, SecretMisconfigured, ChecksumMismatch) as error:
        print(f"the Novu secret key cannot be read: {error}", file=sys.stderr)
        return CANNOT
    print(inbox.subscriber_hash(key, arguments.subscriber_id))
    return OK


def _whole_number(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return parse


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(
        prog="segment-novu", description="Tools for the Segment → Novu bridge (also: python -m segment_novu)."
    )
    commands = main_parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    mapping_help = "the mapping file (default: MAPPING_FILE, else mapping.json beside main.py)"

    check_parser = commands.add_parser(
        "check", help="validate the mapping file and, with NOVU_API_KEY, that its workflows exist in Novu"
    )
    check_parser.add_argument("--mapping", metavar="FILE", help=mapping_help)
    check_parser.set_defaults(run=check)

    replay_parser = commands.add_parser(
        "replay", help="send a Segment export through the bridge: JSON lines, a JSON array, one event or a "
                       "Tracking API envelope"
    )
    replay_parser.add_argument("file", metavar="FILE", help="the export: one event per line, one JSON array, one "
                                                            "event, or {\"batch\": [...]}")
    replay_parser.add_argument("--dry-run", action="store_true", help="print the Novu requests instead of sending them")
    replay_parser.add_argument("--mapping", metavar="FILE", help=mapping_help)
    replay_parser.add_argument("--chunk-size", type=_whole_number(1), default=200, metavar="N",
                               help="events per delivery (default 200)")
    replay_parser.add_argument("--retries", type=_whole_number(0), default=5, metavar="N",
                               help="attempts without progress before a chunk is given up (default 5)")
    replay_parser.add_argument("--verbose", action="store_true", help="the bridge's JSON log lines on stderr")
    replay_parser.set_defaults(run=replay)

    hash_parser = commands.add_parser(
        "subscriber-hash",
        help="the Inbox's subscriberHash (HMAC-SHA256 of the subscriber id), keyed with NOVU_SECRET_KEY",
    )
    hash_parser.add_argument("--subscriber-id", required=True, metavar="ID", help="the subscriber (Segment userId)")
    hash_parser.set_defaults(run=subscriber_hash)
    return main_parser


def main(argv: list[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    return arguments.run(arguments)
