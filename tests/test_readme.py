"""The README's contents list stays true to its sections."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def github_anchor(title: str) -> str:
    """A heading's link target as GitHub makes it: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def test_the_contents_list_links_every_section_in_order():
    text = README.read_text(encoding="utf-8")
    sections = [line.lstrip("#").strip() for line in text.splitlines() if re.match(r"#{2,3} ", line)]
    listed = re.findall(r"^ *- \[(.+)\]\(#(.+)\)$", text.split("## Install", 1)[0], re.MULTILINE)
    assert [title for title, _ in listed] == sections
    assert all(target == github_anchor(title) for title, target in listed)
