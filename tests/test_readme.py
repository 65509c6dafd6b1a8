"""The docs quote counts taken from the suite and list every setting; this keeps them true, and keeps
every relative link in README.md and docs/*.md pointing at a file (and heading) that exists."""

from __future__ import annotations

import re
from pathlib import Path

from segment_novu import config
from tests.test_faults import FAULTS_COVERED
from tests.test_hostile_input import CORPUS_SIZE
from tests.test_properties import PROPERTY_EXAMPLES_TOTAL

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _page(relative: str) -> str:
    return (ROOT / relative).read_text(encoding="utf-8")


def _pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def test_the_quoted_counts_match_the_suite():
    page = _page("docs/reliability-and-security.md")
    assert f"**Faults: {FAULTS_COVERED} covered**" in page
    assert f"**Hostile input: {CORPUS_SIZE} bad requests**" in page
    assert f"**Property-based: {PROPERTY_EXAMPLES_TOTAL:,} examples a run**" in page


def test_every_variable_config_reads_is_listed_and_has_one_row_in_the_configuration_table():
    source = (ROOT / "segment_novu" / "config.py").read_text(encoding="utf-8")
    read = set(re.findall(r'env, "([A-Z][A-Z0-9_]+)"', source)) | set(re.findall(r'"(SEGMENT_SHARED_SECRET\w*)"', source))
    assert read == set(config.VARIABLES)
    table = _page("docs/configuration.md")
    for name in config.VARIABLES:
        assert table.count(f"| `{name}` |") == 1, name


_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+).+?\1", re.DOTALL)
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)


def _without_code(text: str) -> str:
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def _anchors(path: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lowercased, punctuation dropped, spaces as
    hyphens, a repeated one numbered (-1, -2, ...)."""
    seen: dict[str, int] = {}
    anchors = set()
    for heading in _HEADING.findall(_FENCE.sub("", path.read_text(encoding="utf-8"))):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
        slug = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def test_every_relative_link_in_the_docs_points_at_something_that_exists():
    broken = []
    for page in _pages():
        for target in _LINK.findall(_without_code(page.read_text(encoding="utf-8"))):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # https:, mailto:, …
                continue
            path_part, _, anchor = target.partition("#")
            linked = (page.parent / path_part).resolve() if path_part else page
            where = f"{page.relative_to(ROOT)}: ({target})"
            if not linked.exists():
                broken.append(f"{where}: no such file")
            elif anchor and linked.suffix == ".md" and linked.is_file() and anchor not in _anchors(linked):
                broken.append(f"{where}: no heading with that anchor")
    assert not broken, "\n".join(broken)


def test_the_readme_links_every_docs_page():
    readme = _page("README.md")
    missing = [page.name for page in sorted(DOCS.glob("*.md")) if f"(docs/{page.name})" not in readme]
    assert not missing, missing
