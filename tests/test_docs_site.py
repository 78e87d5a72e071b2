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


def ci_test_command() -> str:
    """``TEST_COMMAND=(...)`` of ``.ci/run``: the command CI runs the suite with."""
    match = re.search(r"^TEST_COMMAND=\((?P<words>[^)]*)\)", (ROOT / ".ci/run").read_text(encoding="utf-8"),
                      flags=re.MULTILINE)
    assert match, ".ci/run no longer sets TEST_COMMAND=(...)"
    return " ".join(match["words"].split())


def test_the_readme_gives_the_test_command_ci_runs() -> None:
    """The README's test command is the one CI runs (CI runs what the README says, no other)."""
    command = ci_test_command()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shell_lines = [line for block in re.findall(r"```sh\n(.*?)```", readme, flags=re.DOTALL)
                   for line in block.splitlines()]
    assert any(line.rstrip().endswith(".venv/bin/" + command) for line in shell_lines), (
        f"README.md has no shell line ending in the test command .ci/run runs: {command!r}")
    getting_started = (DOCS / "getting-started/index.md").read_text(encoding="utf-8")
    assert command in getting_started, "docs/getting-started/index.md gives another test command"


def test_the_readme_is_a_front_page_whose_links_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 150, "README.md should stay well under 150 lines"
    local = [target.split("#")[0] for target in re.findall(r"\]\(([^)]+)\)", readme)
             if "://" not in target]
    missing = [target for target in local if target and not (ROOT / target).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"
