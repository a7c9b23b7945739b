"""Every rule named in DOMAIN.md can be found by grepping its citation (issue 20).

DOMAIN.md's citation syntax, as this test reads it:

- a seed reference is a seed number (``000``..``004``) with an optional locator: ``§6(3)``
  (part 六, item (三)), ``§5.6``, ``§5.4-5.6``, ``§3(1)1-4``, ``§4(1)6``, ``annex 1``,
  ``annex 1 §2(3)``, ``annex 2 art. 11``. It stands in parentheses, several to a pair
  separated by commas (``(004 §5(3), annex 1 §2(3))``); a locator without a seed number
  takes the seed before it in the same parentheses, else the one of its section heading
  (``## 5. Risk (004 §6)`` ... ``(§6(1))`` is ``004 §6(1)``);
- a named regulation or standard: ``Civil Code art. 1259``, ``贷款通则 art. 12``,
  ``PBoC 银发〔2003〕251号``, ``GB 11643``, ``ISO 7064 MOD 11-2``;
- a section heading that cites its source numbers what is under it: a table row ``| D4 |``
  is ``004 annex 3 D4``, a list item ``4.`` is ``004 annex 2 step 4``.

Each citation must appear, spelled exactly so, in the product code (``services/``,
``shared/``, ``vcredit/``), normally as a one-line comment at the rule's home. It may be
followed by a finer locator (``000 §4(6)`` is found by ``000 §4``) but not by more of a
name or number (``004 annex 3 A10`` is not ``004 annex 3 A1``). The scorecard items are
cited at the profile fields that feed them (``shared/profile.py``): their points live in
the rule set files, whose bytes are the rule set's version, so no comment goes there.

DOMAIN.md lives beside the checkout, in ``../shared/`` (README); CI clones the repository
to ``X/main`` and copies the shared directory to ``X/shared``. In a git worktree the
sibling is the main checkout's.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PRODUCT = ("services", "shared", "vcredit")

# Rules DOMAIN.md names that the product does not implement yet, each with the reason.
NOT_YET_IMPLEMENTED = {
    # DOMAIN.md §3 steps 1-3 happen in the village before anything reaches the system: the
    # recorded workflow starts at the rating and its public notice (step 4).
    "004 annex 2 step 1": "application to the village group, on paper",
    "004 annex 2 step 2": "village group review (小组评议), on paper",
    "004 annex 2 step 3": "village assessment (村级评定), on paper",
    # DOMAIN.md §7, loan lifecycle and settlement: a later issue.
    "PBoC 银发〔2003〕251号": "penalty and compound interest (罚息, 复利)",
}

_SECTION = r"§\d+(?:\.\d+)?(?:\(\d+\))?\d*(?:-\d+(?:\.\d+)?)?"
_LOCATOR = rf"(?:{_SECTION}|annex \d+(?: {_SECTION}| art\. \d+)?)"
_SEED_REF = re.compile(rf"(?P<seed>00\d)(?: (?P<loc>{_LOCATOR}))?|(?P<bare>{_LOCATOR})")
_NAMED = re.compile(
    r"GB \d+|ISO \d+ MOD \d+-\d+|PBoC 银发〔\d+〕\d+号"
    r"|(?:[A-Z][a-z]+(?: [A-Z][a-z]+)*|[\u4e00-\u9fff]+) art\. \d+"
)
_BLOCK_START = re.compile(r"#|\||- |\d+\. ")


def domain_md() -> Path:
    candidates = [ROOT.parent / "shared" / "DOMAIN.md"]
    common = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--path-format=absolute", "--git-common-dir"],
        capture_output=True,
        text=True,
        check=False,
    )
    if common.returncode == 0 and common.stdout.strip():
        candidates.append(Path(common.stdout.strip()).parent.parent / "shared" / "DOMAIN.md")
    for path in candidates:
        if path.is_file():
            return path
    raise AssertionError(f"DOMAIN.md not found; looked at {[str(p) for p in candidates]}")


def _logical_lines(text: str) -> Iterator[str]:
    """Headings, table rows and list items one by one; a paragraph's lines joined, since a
    parenthesis may span them."""
    lines: list[str] = []
    for raw in text.splitlines():
        if lines and raw.strip() and lines[-1].strip() and not _BLOCK_START.match(raw):
            lines[-1] += " " + raw.strip()
        else:
            lines.append(raw)
    yield from lines


def _parenthesised(line: str) -> Iterator[str]:
    depth, start = 0, 0
    for i, char in enumerate(line):
        if char == "(":
            if depth == 0:
                start = i + 1
            depth += 1
        elif char == ")" and depth:
            depth -= 1
            if depth == 0:
                yield line[start:i]


def _references(line: str, heading_seed: str | None) -> list[str]:
    found: list[str] = []
    for group in _parenthesised(line):
        seed = None
        for piece in re.split(r", | and |; ", group):
            match = _SEED_REF.fullmatch(piece.strip())
            if match is None:
                found += _NAMED.findall(piece)
            elif match["seed"]:
                seed = match["seed"]
                found.append(f"{seed} {match['loc']}" if match["loc"] else seed)
            elif seed or heading_seed:
                found.append(f"{seed or heading_seed} {match['bare']}")
    return found


def citations(text: str) -> list[str]:
    """Every citation DOMAIN.md makes, in order of first appearance."""
    found: list[str] = []
    heading: str | None = None
    for line in _logical_lines(text):
        refs = _references(line, heading[:3] if heading else None)
        if line.startswith("#"):
            heading = next((r for r in refs if r[:3].isdigit()), None)
        elif heading and (row := re.match(r"\| ([A-Z]\d+[a-z]?) \|", line)):
            refs.append(f"{heading} {row[1]}")
        elif heading and (step := re.match(r"(\d+)\. ", line)):
            refs.append(f"{heading} step {step[1]}")
        found += [r for r in refs if r not in found]
    return found


@cache
def product_code() -> str:
    return "\n".join(
        path.read_text(encoding="utf-8") for package in PRODUCT for path in sorted((ROOT / package).rglob("*.py"))
    )


def cited(citation: str, code: str) -> bool:
    return re.search(rf"(?<![\w.,]){re.escape(citation)}(?![\w]|\.\d)", code) is not None


def test_the_syntax_is_read_as_documented() -> None:
    text = (
        "## 5. Risk (004 §6)\n"
        "- Loss (§6(1)): split; fund (§6(2), §3(2)).\n"
        "| who | (004 §5(3), annex 1 §2(3)) |\n"
        "Law (Civil Code art. 1259) and the ID (GB 11643, an\nISO 7064 MOD 11-2 check digit).\n"
        "## 2. Card (004 annex 3)\n"
        "| D4 | guarantees | -10 |\n"
        "## 3. Workflow (004 annex 2)\n"
        "4. Public notice (公示), and (002 §3(1)1-4, 001) and (罚息, PBoC 银发〔2003〕251号)\n"
    )
    assert citations(text) == [
        "004 §6",
        "004 §6(1)",
        "004 §6(2)",
        "004 §3(2)",
        "004 §5(3)",
        "004 annex 1 §2(3)",
        "Civil Code art. 1259",
        "GB 11643",
        "ISO 7064 MOD 11-2",
        "004 annex 3",
        "004 annex 3 D4",
        "004 annex 2",
        "002 §3(1)1-4",
        "001",
        "PBoC 银发〔2003〕251号",
        "004 annex 2 step 4",
    ]


def test_a_citation_is_found_only_as_itself() -> None:
    assert cited("004 annex 3 A1", "# 004 annex 3 A1: party member")
    assert not cited("004 annex 3 A1", "# 004 annex 3 A10")
    assert not cited("004 annex 3 A1", "# 004 annex 3 A1b")
    assert cited("000 §4", "(seed 000 §4(6))")
    assert not cited("004 §5.4", "004 §5.45")
    assert not cited("000", "10,000,000")


def test_domain_md_cites_what_this_test_expects() -> None:
    """A guard on the parser: if DOMAIN.md's syntax drifts, the list shrinks and this says so."""
    found = citations(domain_md().read_text(encoding="utf-8"))
    for expected in ("004 §6(3)", "004 annex 3 D4", "004 annex 3 V4", "004 §5.6", "003 annex 1", "贷款通则 art. 12"):
        assert expected in found
    assert len(found) >= 50


def test_every_domain_citation_is_in_the_product_code() -> None:
    found = citations(domain_md().read_text(encoding="utf-8"))
    code = product_code()
    missing = [c for c in found if c not in NOT_YET_IMPLEMENTED and not cited(c, code)]
    assert not missing, f"DOMAIN.md citations no product module carries: {missing}"


def test_the_allow_list_is_current() -> None:
    """An entry leaves the list when DOMAIN.md drops it or the product implements (cites) it."""
    found = citations(domain_md().read_text(encoding="utf-8"))
    code = product_code()
    assert [c for c in NOT_YET_IMPLEMENTED if c not in found] == []
    assert [c for c in NOT_YET_IMPLEMENTED if cited(c, code)] == []
