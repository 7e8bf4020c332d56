"""Count what the style bounds limit: long functions, long docstrings, crowded folders.

Code read beside its peers stays small: functions of at most 60 lines (tests excepted),
module docstrings of at most 15 lines and function docstrings of at most 10 (what and why;
numbers and history go to docs/; a public entry point's Args/Returns/Raises sections are
its contract and not counted), and at most 10 modules in a folder. Each breach has a key
that survives edits elsewhere in its file (path and qualified name, no line numbers), so
test/project/test_style.py can hold the ones left in a shrinking allowlist.

Run from the repository root: ``python tools/code_shape.py`` prints every breach and exits
1 when there is one.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

MAX_FUNCTION_LINES = 60
MAX_MODULE_DOCSTRING_LINES = 15
MAX_FUNCTION_DOCSTRING_LINES = 10
MAX_MODULES_PER_FOLDER = 10
#: Folders (from the repository root) whose Python files are held to the bounds.
SOURCES = ("sam2_ros", "benchmarks", "tools", "launch")
#: Folders whose folders are held to the module bound too (tests: that bound only).
FOLDER_SOURCES = (*SOURCES, "test")


class Breach(NamedTuple):
    """One bound broken: where (``path`` or ``path::Class.function``), what, and how big."""

    where: str
    what: str  # "function", "docstring", "module docstring" or "modules"
    size: int
    line: int = 0  # for the reader only; never part of the key

    @property
    def key(self) -> str:
        """Stable name of the breach: ``path::Qual.name what``, no line numbers."""
        return f"{self.where} {self.what}"

    def __str__(self) -> str:
        at = f" (line {self.line})" if self.line else ""
        return f"{self.key}: {self.size}{at}"


#: Where a docstring's contract starts: these sections list parameters, results and errors,
#: one line each, so they are not prose to keep short.
CONTRACT_SECTIONS = ("Args:", "Returns:", "Raises:", "Yields:")


def _docstring_lines(node: ast.AST) -> int:
    """Lines of a docstring's prose: what comes before its Args/Returns/Raises sections."""
    text = ast.get_docstring(node, clean=True)
    if not text:
        return 0
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() in CONTRACT_SECTIONS]
    return starts[0] if starts else len(lines)


def _functions(node: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.AST]]:
    """Every function below ``node`` with its qualified name (``Class.method``)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = f"{prefix}{child.name}"
            if not isinstance(child, ast.ClassDef):
                yield name, child
            yield from _functions(child, name + ".")
        else:
            yield from _functions(child, prefix)


def file_breaches(path: Path, root: Path) -> list[Breach]:
    """Every function, function docstring or module docstring of one file that is too long."""
    rel = path.relative_to(root).as_posix()
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    if (lines := _docstring_lines(tree)) > MAX_MODULE_DOCSTRING_LINES:
        found.append(Breach(rel, "module docstring", lines))
    for name, node in _functions(tree):
        if (length := node.end_lineno - node.lineno + 1) > MAX_FUNCTION_LINES:
            found.append(Breach(f"{rel}::{name}", "function", length, node.lineno))
        if (lines := _docstring_lines(node)) > MAX_FUNCTION_DOCSTRING_LINES:
            found.append(Breach(f"{rel}::{name}", "docstring", lines, node.lineno))
    return found


def folder_breaches(root: Path) -> list[Breach]:
    """Folders holding more modules than the bound (``__init__.py`` not counted)."""
    found = []
    for source in FOLDER_SOURCES:
        top = root / source
        folders = [top, *(p for p in top.rglob("*") if p.is_dir())] if top.is_dir() else []
        for folder in sorted(folders):
            modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
            if len(modules) > MAX_MODULES_PER_FOLDER:
                found.append(Breach(folder.relative_to(root).as_posix(), "modules", len(modules)))
    return found


def breaches(root: Path) -> list[Breach]:
    """All breaches under the repository root ``root``."""
    found = folder_breaches(root)
    for source in SOURCES:
        for path in sorted((root / source).rglob("*.py")):
            if "__pycache__" not in path.parts:
                found += file_breaches(path, root)
    return found


def main() -> int:
    found = breaches(Path.cwd())
    print("\n".join(map(str, found)) if found else "code shape: every bound holds")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
