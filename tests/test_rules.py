import json

import pytest

from segment_novu.mapping import rules
from segment_novu.mapping.rules import EventRule, MappingError, Rules

SOURCE = "mapping.json"
IDENTIFIER_RULE = (
    "a workflow identifier must be a non-empty string of letters, digits, '-', '_', '.' or ':', got "
)


def parse(document) -> Rules:
    return rules.parse(document, SOURCE)


def parse_error(document) -> str:
    with pytest.raises(MappingError) as caught:
        parse(document)
    return str(caught.value)


def write(tmp_path, content, name="mapping.json"):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def load_error(path) -> str:
    with pytest.raises(MappingError) as caught:
        rules.load(path)
    return str(caught.value)


# parse: accepted


@pytest.mark.parametrize(
    "entry, rule",
    [
        ("welcome", EventRule(workflows=("welcome",))),
        ("Welcome_v2.email:eu", EventRule(workflows=("Welcome_v2.email:eu",))),
        (["order-confirmation", "receipt-email"], EventRule(workflows=("order-confirmation", "receipt-email"))),
        ({"workflows": ["a", "b"]}, EventRule(workflows=("a", "b"))),
        ({"workflows": "a"}, EventRule(workflows=("a",))),
        ({"workflows": ["a"], "ignore": False}, EventRule(workflows=("a",))),
        ({"ignore": True}, EventRule(ignore=True)),
    ],
)
def test_track_entry(entry, rule):
    assert parse({"track": {"Order Completed": entry}}) == Rules(
        default_rule=True, track={"Order Completed": rule}, source=SOURCE
    )


@pytest.mark.parametrize(
    "document, default_rule",
    [({}, True), ({"defaultRule": True}, True), ({"defaultRule": False}, False), ({"$comment": "notes"}, True)],
)
def test_default_rule(document, default_rule):
    assert parse(document) == Rules(default_rule=default_rule, track={}, source=SOURCE)


def test_workflows_lists_every_mapped_workflow():
    parsed = parse({"track": {"A": ["x", "y"], "B": "y", "C": {"ignore": True}, "D": {"workflows": ["z"]}}})
    assert parsed.workflows == {"x", "y", "z"}


def test_built_in_defaults():
    assert Rules() == Rules(default_rule=True, track={}, source="built-in defaults")
    assert rules.load(None) == Rules()


# parse: refused, with the location


@pytest.mark.parametrize(
    "document, message",
    [
        ([], "mapping.json: the mapping must be a JSON object"),
        ("track", "mapping.json: the mapping must be a JSON object"),
        ({"tracks": {}}, "mapping.json: unknown key 'tracks' (did you mean 'track'?); allowed here: defaultRule, track, page, screen, group, devices, audiences"),
        (
            {"track": {}, "identify": {}, "alias": {}},
            "mapping.json: unknown key 'alias'; allowed here: defaultRule, track, page, screen, group, devices, audiences",
        ),
        ({"defaultRule": "yes"}, "mapping.json: defaultRule must be true or false"),
        ({"defaultRule": 1}, "mapping.json: defaultRule must be true or false"),
        ({"track": ["welcome"]}, "mapping.json: track must be an object of event name → workflows"),
        ({"track": {"Signed Up": "bad id"}}, 'mapping.json: track."Signed Up": ' + IDENTIFIER_RULE + '"bad id"'),
        ({"track": {"Signed Up": ""}}, 'mapping.json: track."Signed Up": ' + IDENTIFIER_RULE + '""'),
        ({"track": {"Signed Up": "-welcome"}}, 'mapping.json: track."Signed Up": ' + IDENTIFIER_RULE + '"-welcome"'),
        ({"track": {"A": ["ok", 42]}}, 'mapping.json: track."A"[1]: ' + IDENTIFIER_RULE + "42"),
        (
            {"track": {"A": {"workflows": ["ok", None]}}},
            'mapping.json: track."A".workflows[1]: ' + IDENTIFIER_RULE + "null",
        ),
        ({"track": {"A": []}}, 'mapping.json: track."A": an empty list triggers nothing; use {"ignore": true}'),
        (
            {"track": {"A": {"workflows": []}}},
            'mapping.json: track."A".workflows: an empty list triggers nothing; use {"ignore": true}',
        ),
        (
            {"track": {"A": {"ignore": True, "workflows": ["a"]}}},
            'mapping.json: track."A": ignore and workflows together make no sense',
        ),
        ({"track": {"A": {"ignore": "yes"}}}, 'mapping.json: track."A".ignore: must be true or false'),
        (
            {"track": {"A": {"workflows": "a", "workflow": "a"}}},
            "mapping.json: track.\"A\": unknown key 'workflows' (did you mean 'workflow'?); allowed here: workflow, when, payload, payloadMode, to, topic, transactionKey, actor, tenant, context, overrides",
        ),
        ({"track": {"A": {}}}, 'mapping.json: track."A": needs workflows or ignore'),
        ({"track": {"A": {"ignore": False}}}, 'mapping.json: track."A": needs workflows or ignore'),
        ({"track": {"A": 42}}, 'mapping.json: track."A": expected a workflow, a list of workflows or an object'),
        ({"track": {"A": None}}, 'mapping.json: track."A": expected a workflow, a list of workflows or an object'),
        (
            {"track": {'Say "hi"': 7}},
            'mapping.json: track."Say \\"hi\\"": expected a workflow, a list of workflows or an object',
        ),
    ],
)
def test_parse_refuses(document, message):
    assert parse_error(document) == message


# load


def test_load_reads_a_file(tmp_path):
    path = write(tmp_path, {"defaultRule": False, "track": {"Signed Up": ["welcome", "crm-sync"]}}, "rules.json")
    assert rules.load(path) == Rules(
        default_rule=False, track={"Signed Up": EventRule(workflows=("welcome", "crm-sync"))}, source="rules.json"
    )


def test_load_reports_content_errors_with_the_file_name(tmp_path):
    path = write(tmp_path, {"track": {"Signed Up": []}}, "rules.json")
    assert load_error(path) == 'rules.json: track."Signed Up": an empty list triggers nothing; use {"ignore": true}'


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"track": {', "mapping.json: not valid JSON: Expecting property name enclosed in double quotes: "
                        "line 1 column 12 (char 11)"),
        ('{\n  "track": {"A": "a",}\n}', "mapping.json: not valid JSON: Expecting property name enclosed in "
                                         "double quotes: line 2 column 22 (char 23)"),
        ("", "mapping.json: not valid JSON: Expecting value: line 1 column 1 (char 0)"),
    ],
)
def test_load_reports_invalid_json_with_its_location(tmp_path, text, message):
    assert load_error(write(tmp_path, text)) == message


def test_load_of_a_missing_file(tmp_path):
    path = tmp_path / "absent.json"
    assert load_error(path) == f"MAPPING_FILE {path}: cannot be read (No such file or directory)"


def test_load_of_a_directory(tmp_path):
    assert load_error(tmp_path).startswith(f"MAPPING_FILE {tmp_path}: cannot be read (")


def test_load_of_a_file_that_is_not_utf8(tmp_path):
    path = write(tmp_path, b'{"track": {"Caf\xe9": "cafe"}}')
    assert load_error(path).startswith("mapping.json: ")
