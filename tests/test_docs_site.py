"""The site's navigation lists every page, so a page cannot be written and then never found
(Zensical, unlike MkDocs, does not warn about a page left out of ``nav``)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def nav_pages() -> list[str]:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = config[config.index("\nnav:"):]
    return re.findall(r"([\w./-]+\.md)\s*$", nav, flags=re.MULTILINE)


def test_every_page_is_in_the_navigation_and_every_entry_exists() -> None:
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")
             if p != DOCS / "README.md" and "_ext" not in p.parts}
    listed = nav_pages()
    assert len(listed) == len(set(listed)), "a page is listed twice in mkdocs.yml's nav"
    assert not pages - set(listed), f"pages missing from mkdocs.yml's nav: {sorted(pages - set(listed))}"
    assert not set(listed) - pages, f"nav entries with no page: {sorted(set(listed) - pages)}"
