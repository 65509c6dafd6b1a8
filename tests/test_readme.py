"""The README quotes counts taken from the suite; this keeps them true."""

from __future__ import annotations

import re
from pathlib import Path

from segment_novu import config
from tests.test_faults import FAULTS_COVERED
from tests.test_hostile_input import CORPUS_SIZE
from tests.test_properties import PROPERTY_EXAMPLES_TOTAL

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_the_readme_counts_match_the_suite():
    assert f"**Faults: {FAULTS_COVERED} covered**" in README
    assert f"**Hostile input: {CORPUS_SIZE} bad requests**" in README
    assert f"**Property-based: {PROPERTY_EXAMPLES_TOTAL:,} examples a run**" in README


def test_every_variable_config_reads_is_listed_and_has_one_row_in_the_configuration_table():
    source = (Path(__file__).resolve().parent.parent / "segment_novu" / "config.py").read_text(encoding="utf-8")
    read = set(re.findall(r'env, "([A-Z][A-Z0-9_]+)"', source)) | set(re.findall(r'"(SEGMENT_SHARED_SECRET\w*)"', source))
    assert read == set(config.VARIABLES)
    for name in config.VARIABLES:
        assert README.count(f"| `{name}` |") == 1, name
