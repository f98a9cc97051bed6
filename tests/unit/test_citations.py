"""The repository stands on its own: every citation of docs/reference names a page and a heading
that exist, every relative Markdown link resolves, and nothing points at a document outside the
repository (the citation rules are in docs/reference/README.md#citing).

Scanned: every tracked text file (``git ls-files``) with one of ``SUFFIXES``. This file is not
scanned, since it spells out the forms it forbids; the checks on it are the synthetic cases at
the end."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[2]
SELF = PurePosixPath(Path(__file__).resolve().relative_to(ROOT).as_posix())
SUFFIXES = {".py", ".md", ".bicep", ".json", ".toml", ".txt", ".html", ".js", ".css", ".yaml", ".yml"}
REFERENCE = PurePosixPath("docs/reference")

# docs/reference/<page>.md, optionally #<anchor>
CITATION = re.compile(r"docs/reference/([\w.-]+\.md)(?:#([\w-]+))?")
# A section sign before a number; allowed only right after "RFC <number> ".
SECTION = re.compile(r"§\s*\d[\d.]*")
RFC_BEFORE = re.compile(r"RFC\s?\d{3,5}\s*$")
# reference/<page>.md that is not docs/reference/<page>.md (a Markdown link target is resolved
# by the link check instead).
LOOSE_REFERENCE = re.compile(r"(?<![\w/.-])(?<!docs/)(?<!\]\()reference/[\w.-]+\.md")
DESIGN = re.compile(r"\bdesign\.md\b")
ABSOLUTE_WORK = re.compile(r"(?<![\w.-])/work/")
# A relative path that climbs: ../x, ../../x/y
CLIMB = re.compile(r"(?<![\w/.])((?:\.\./)+)([\w.-]*(?:/[\w.-]+)*)")
# A bare "U4" style pointer into the GoTo page's list of unconfirmed behaviours.
BARE_U = re.compile(r"(?<![\w#-])U(?:1[0-8]|[1-9])\b(?![+\w])")
MD_LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading (before de-duplication)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading anchor of a Markdown text; a repeated slug gets -1, -2, ... as on GitHub."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    in_fence = False
    for line in markdown.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


@cache
def tracked_files() -> tuple[PurePosixPath, ...]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True)
    return tuple(PurePosixPath(name) for name in out.stdout.split("\0") if name)


@cache
def tracked_set() -> frozenset[PurePosixPath]:
    files = tracked_files()
    dirs = {parent for name in files for parent in name.parents}
    return frozenset(files) | frozenset(dirs)


@cache
def anchors_of(path: PurePosixPath) -> frozenset[str] | None:
    """The anchors of a tracked Markdown file; None when the file is not in the repository."""
    if path not in tracked_set():
        return None
    return frozenset(anchors((ROOT / path).read_text(encoding="utf-8")))


def resolve(base: PurePosixPath, relative: str) -> PurePosixPath | None:
    """``relative`` seen from the directory ``base``; None when it climbs out of the repository."""
    parts: list[str] = list(base.parts)
    for part in PurePosixPath(relative).parts:
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part != ".":
            parts.append(part)
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def check_citations(path: PurePosixPath, number: int, line: str) -> Iterator[Problem]:
    for match in CITATION.finditer(line):
        page, anchor = REFERENCE / match.group(1), match.group(2)
        known = anchors_of(page)
        if known is None:
            yield Problem(str(path), number, f"cites {page}, which is not in the repository")
        elif anchor is not None and anchor not in known:
            yield Problem(str(path), number, f"cites {page}#{anchor}, but {page} has no such heading")


def check_old_forms(path: PurePosixPath, number: int, line: str) -> Iterator[Problem]:
    where = str(path)
    for match in SECTION.finditer(line):
        if not RFC_BEFORE.search(line[: match.start()]):
            yield Problem(where, number, f"section number {match.group(0)!r} of no document in the repository")
    for match in LOOSE_REFERENCE.finditer(line):
        yield Problem(where, number, f"{match.group(0)} is not a page under docs/reference")
    if DESIGN.search(line):
        yield Problem(where, number, "cites design.md, which is not in the repository")
    if ABSOLUTE_WORK.search(line):
        yield Problem(where, number, "an absolute path outside the repository (/work/...)")
    if path.parent != REFERENCE:
        for match in BARE_U.finditer(line):
            yield Problem(
                where, number, f"bare {match.group(0)}: cite docs/reference/goto-api.md#{match.group(0).lower()}"
            )
    for match in CLIMB.finditer(line):
        target = resolve(path.parent, match.group(1) + match.group(2))
        if target is None:
            yield Problem(where, number, f"{match.group(0)} climbs out of the repository")
        elif match.group(2).startswith("shared") and target not in tracked_set():
            yield Problem(where, number, f"{match.group(0)} is not a path in the repository")


def check_links(path: PurePosixPath, number: int, line: str) -> Iterator[Problem]:
    for match in MD_LINK.finditer(line):
        target = match.group(1)
        if re.match(r"[a-zA-Z][\w+.-]*:", target):  # https:, mailto:, ...
            continue
        file_part, _, anchor = target.partition("#")
        resolved = resolve(path.parent, file_part) if file_part else path
        if resolved is None or resolved not in tracked_set():
            yield Problem(str(path), number, f"link to {target}: no such file in the repository")
        elif anchor and resolved.suffix == ".md" and anchor not in (anchors_of(resolved) or ()):
            yield Problem(str(path), number, f"link to {target}: {resolved} has no such heading")


def check_text(path: PurePosixPath, text: str) -> list[Problem]:
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        problems += check_citations(path, number, line)
        problems += check_old_forms(path, number, line)
        if path.suffix == ".md":
            problems += check_links(path, number, line)
    return problems


def scanned_files() -> list[PurePosixPath]:
    return [p for p in tracked_files() if p.suffix in SUFFIXES and p != SELF and (ROOT / p).is_file()]


@cache
def repository_problems() -> tuple[Problem, ...]:
    problems: list[Problem] = []
    for path in scanned_files():
        problems += check_text(path, (ROOT / path).read_text(encoding="utf-8", errors="replace"))
    return tuple(problems)


def report(problems: tuple[Problem, ...] | list[Problem]) -> str:
    return "\n".join(str(p) for p in problems)


# ---------------------------------------------------------------- the repository


def test_the_reference_pages_exist_and_the_scan_sees_the_code() -> None:
    files = set(scanned_files())
    for page in ("README.md", "microsoft-graph.md", "entra-provisioning.md", "goto-api.md"):
        assert REFERENCE / page in files
    assert PurePosixPath("shared/goto/scim.py") in files
    assert PurePosixPath("infra/main.bicep") in files


def test_every_unconfirmed_goto_behaviour_has_its_own_anchor() -> None:
    known = anchors_of(REFERENCE / "goto-api.md") or frozenset()
    assert {f"u{n}" for n in range(1, 19)} <= known


def test_every_citation_resolves_and_nothing_points_outside_the_repository() -> None:
    problems = repository_problems()
    if problems:
        pytest.fail(f"{len(problems)} dangling or outside citation(s):\n{report(problems)}", pytrace=False)


# ---------------------------------------------------------------- the checker itself


def test_slugs_follow_github() -> None:
    assert slug("CSV export (Entra's three files)") == "csv-export-entras-three-files"
    assert slug("`$deltatoken=latest` and [paging](x.md)") == "deltatokenlatest-and-paging"
    assert slug("U13") == "u13"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n## B") == {"a", "a-1", "b"}


def test_a_citation_of_a_missing_heading_or_page_is_reported_with_file_and_line() -> None:
    text = (
        "ok = 1  # docs/reference/goto-api.md#rate-limits\n"
        "# see docs/reference/goto-api.md#rate-limit\n"
        "# see docs/reference/nowhere.md#x\n"
    )
    problems = check_text(PurePosixPath("shared/x.py"), text)
    assert [(p.path, p.line) for p in problems] == [("shared/x.py", 2), ("shared/x.py", 3)]
    assert "no such heading" in problems[0].message and "not in the repository" in problems[1].message


def test_the_old_forms_are_reported_and_rfc_sections_are_not() -> None:
    sign = "\N{SECTION SIGN}"
    bad = [
        f"# reference {sign}9",
        "# (reference/goto-api.md)",
        "# see design" + ".md",
        "# cloned next to it in /wo" + "rk/shared",
        "# the reference (" + "U4)",
        "See [the page](../../shared/docs/x.md) or ../../../elsewhere",
    ]
    for line in bad:
        assert check_text(PurePosixPath("docs/x.md"), line), line
    fine = [
        f"# RFC 7644 {sign}3.5.2, RFC 7643 {sign}2.1",
        "[settings](../shared/settings.py) and [reference](reference/goto-api.md#u4)",
        "U+0020 and UTF-8 and GOTO_U1_X",
    ]
    for line in fine:
        assert not check_text(PurePosixPath("docs/x.md"), line), line
