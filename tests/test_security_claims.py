"""docs/SECURITY.md cannot rot: every test it cites exists, and ``make security`` runs exactly those.

The document names its proofs as pytest node ids in backquotes (``tests/<file>.py::<test>``).
``tests/security_claims.txt`` is the list ``make security`` runs. These tests fail when a cited
test was renamed or deleted, when the list and the document disagree, or when a test in
tests/security/ (written to prove a claim) is cited nowhere.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "SECURITY.md"
CLAIMS = ROOT / "tests" / "security_claims.txt"
CITED = re.compile(r"`(tests/[A-Za-z0-9_/]+\.py::[A-Za-z0-9_]+)`")


def cited() -> set[str]:
    return set(CITED.findall(DOC.read_text(encoding="utf-8")))


def listed() -> list[str]:
    lines = CLAIMS.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def defined_tests(path: Path) -> set[str]:
    """Names of the module-level test functions (sync or async) that pytest would collect."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
    }


def test_security_doc_cites_tests() -> None:
    assert len(cited()) > 100


def test_every_test_the_security_doc_cites_exists() -> None:
    missing = []
    for node_id in sorted(cited()):
        file, name = node_id.split("::")
        path = ROOT / file
        if not path.is_file() or name not in defined_tests(path):
            missing.append(node_id)
    assert missing == [], "docs/SECURITY.md cites tests that do not exist"


def test_make_security_runs_exactly_the_cited_tests() -> None:
    claims = listed()
    assert len(claims) == len(set(claims)), "tests/security_claims.txt lists a test twice"
    assert sorted(set(claims) ^ cited()) == [], "tests/security_claims.txt and docs/SECURITY.md disagree"


def test_every_security_test_is_cited() -> None:
    written = {
        f"{path.relative_to(ROOT).as_posix()}::{name}"
        for path in sorted((ROOT / "tests" / "security").glob("test_*.py"))
        for name in defined_tests(path)
    }
    assert sorted(written - cited()) == [], "tests/security/ has tests docs/SECURITY.md does not cite"


def test_makefile_security_target_runs_the_claims_list() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    target = re.search(r"^security:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert target is not None, "the Makefile has no security target"
    assert "tests/security_claims.txt" in target.group(1) and "tests/test_security_claims.py" in target.group(1)
