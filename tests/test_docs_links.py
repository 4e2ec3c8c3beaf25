"""The README and docs/*.md link to each other, to screenshots and to code: a moved or renamed file or heading must
not leave a dead link behind. Relative markdown links (and images) must name an existing file, and an anchor must
name a heading of the file it points into (GitHub's heading ids)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def _prose(text: str) -> str:
    """The text without fenced blocks, indented code blocks and code spans, where brackets are not links."""
    text = FENCE.sub("", text)
    text = "\n".join(line for line in text.split("\n") if not line.startswith("    "))
    return CODE_SPAN.sub("", text)


def heading_ids(text: str) -> set[str]:
    """The ids GitHub gives a file's headings: lower case, punctuation dropped, spaces to hyphens, repeats numbered."""
    ids: set[str] = set()
    seen: dict[str, int] = {}
    for line in FENCE.sub("", text).split("\n"):
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        ids.add(slug if count == 0 else f"{slug}-{count}")
    return ids


def broken_links(doc: Path) -> list[str]:
    """Every relative link of one markdown file that names a missing file or heading."""
    broken = []
    for target in LINK.findall(_prose(doc.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in heading_ids(dest.read_text()):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    return broken


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_every_relative_link_resolves(doc):
    assert broken_links(doc) == []


def test_the_checker_reports_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / "other.md").write_text("# Other\n\n## Processes (`Procfile`)\n")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "[ok](other.md#processes-procfile) [gone](missing.md) [bad](other.md#nowhere) ![img](shot.png)\n"
        "`[code](not-a-link.md)` [web](https://example.com/x.md)\n"
    )
    assert broken_links(doc) == [
        "missing.md: no such file",
        "other.md#nowhere: no heading #nowhere in other.md",
        "shot.png: no such file",
    ]


def test_ci_runs_the_test_command_the_readme_gives():
    readme = (ROOT / "README.md").read_text()
    (command,) = re.findall(r"^    python3 -m venv .venv && .*&& (\.venv/bin/pytest[^\n]*)$", readme, re.M)
    assert command in (ROOT / ".ci" / "run").read_text().split("\n")
