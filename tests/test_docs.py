"""SECURITY.md points each claim to a test or to a known limit: those pointers stay true.

Every ``tests/PATH.py::test_name`` it cites must name a test function that exists in
that file, every "known limit N" must be one of section 7's numbered limits, and every
tamper-suite limit id it cites must be one of ``KNOWN_LIMITS``; otherwise a renamed or
deleted test would leave the threat model pointing at nothing.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECURITY = ROOT / "SECURITY.md"

TEST_REFERENCE = re.compile(r"\b(tests/[\w/]+\.py)::(?:(\w+)::)?(test_\w+)")
KNOWN_LIMIT_REFERENCE = re.compile(r"known\s+limits?\s+(\d+)", re.IGNORECASE)
TAMPER_LIMIT_REFERENCE = re.compile(r"tamper-suite limit `([\w-]+)`")


def security_text() -> str:
    return SECURITY.read_text(encoding="utf-8")


# SECURITY.md cites dozens of tests in the same few large files: each is parsed once.
@functools.cache
def defined_tests(path: Path) -> frozenset[tuple[str | None, str]]:
    """The ``(class or None, name)`` of every test function defined in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[tuple[str | None, str]] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.add((None, node.name))
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    found.add((node.name, item.name))
    return frozenset(found)


def known_limit_numbers(text: str) -> set[int]:
    """The numbers of the items of section 7 ("Known limits")."""
    section = text.split("\n## 7. Known limits", 1)[1].split("\n## ", 1)[0]
    return {int(n) for n in re.findall(r"^(\d+)\. ", section, re.MULTILINE)}


def test_security_md_cites_tests() -> None:
    """The threat model points to tests at all (a parser that finds nothing checks nothing)."""
    assert len(TEST_REFERENCE.findall(security_text())) >= 60


def test_every_cited_test_exists() -> None:
    missing = []
    for path, cls, name in sorted(set(TEST_REFERENCE.findall(security_text()))):
        file = ROOT / path
        if not file.is_file() or (cls or None, name) not in defined_tests(file):
            missing.append(f"{path}::{cls + '::' if cls else ''}{name}")
    assert not missing, "SECURITY.md cites tests that do not exist: " + ", ".join(missing)


def test_every_cited_known_limit_exists() -> None:
    text = security_text()
    numbers = known_limit_numbers(text)
    cited = {int(n) for n in KNOWN_LIMIT_REFERENCE.findall(text)}
    assert cited, "SECURITY.md cites no known limit"
    assert cited <= numbers, f"known limits cited but not in section 7: {sorted(cited - numbers)}"


def test_every_cited_tamper_limit_exists() -> None:
    from tests.reliability.test_mutations import KNOWN_LIMITS

    cited = set(TAMPER_LIMIT_REFERENCE.findall(security_text()))
    assert cited, "SECURITY.md cites no limit of the tamper suite"
    unknown = cited - {limit.id for limit in KNOWN_LIMITS}
    assert not unknown, f"tamper-suite limits cited but not defined: {sorted(unknown)}"


ARCHITECTURE = ROOT / "docs" / "architecture.md"
REPOSITORY_PATH = re.compile(r"\b((?:vault|cli|tests|benchmarks|docs)/[\w/.-]+\.(?:py|md))\b")
# A module row of architecture.md's layer tables: "| `name.py` | what it is for |",
# under a "### `vault.layer`: ..." heading.
LAYER_HEADING = re.compile(r"^### `(vault\.\w+)`", re.MULTILINE)
MODULE_ROW = re.compile(r"^\| `(\w+\.py)` \|", re.MULTILINE)


def test_every_path_architecture_md_names_exists() -> None:
    """A moved or renamed module must not leave the architecture pointing at nothing."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    named = set(REPOSITORY_PATH.findall(text))
    assert len(named) >= 10
    assert sorted(p for p in named if not (ROOT / p).exists()) == []


def test_every_module_of_a_layer_table_exists_and_every_module_is_listed() -> None:
    """Each layer's table lists exactly the modules of its folder."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    headings = list(LAYER_HEADING.finditer(text))
    assert [h.group(1) for h in headings][:6] == [
        "vault.format",
        "vault.db",
        "vault.runtime",
        "vault.agent",
        "vault.owner",
        "vault.ops",
    ]
    for i, heading in enumerate(headings):
        end = headings[i + 1].start() if i + 1 < len(headings) else len(text)
        listed = set(MODULE_ROW.findall(text[heading.end() : end]))
        folder = ROOT / heading.group(1).replace(".", "/")
        present = {p.name for p in folder.glob("*.py") if p.name != "__init__.py"}
        assert listed == present, heading.group(1)


def test_no_file_points_outside_the_repository() -> None:
    """The repository explains itself: no design brief or shared folder outside it."""
    outside = re.compile(r"DESIGN\.md|\.\./shared|shared/exchanges\.md")
    offenders = []
    for path in ROOT.rglob("*"):
        if not path.is_file() or path.suffix not in {".py", ".md", ".toml", ".sql", ".sh"}:
            continue
        if {".venv", ".git", "build"} & set(path.relative_to(ROOT).parts):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if path != Path(__file__) and outside.search(text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
