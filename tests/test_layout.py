"""The package's layout rule (docs/architecture.md): each folder is one stage, and a module
imports only from its own stage and the stages upstream of it; the package never imports
tests/. A new module that breaks the rule fails here with the offending import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "astro_exp"

# upstream first; a stage may import any stage before it (same number: neither imports the other)
STAGES: dict[str, int] = {
    "<core>": 0,
    "net": 1,
    "data": 2,
    "apod": 3,
    "sources": 4,
    "vision": 5,
    "models": 6,
    "engine": 7,
    "anomaly": 8,
    "tracking": 9,
    "sweep": 9,
    "predict": 10,
    "watch": 11,
    "sharing": 11,
    "review": 11,
    "web": 12,
    "train": 13,
    "crossval": 14,
    "bench": 14,
    "cli": 15,
    "conf": 15,
}
CORE = {
    "errors",
    "config",
    "progress",
    "imageio",
    "tables",
    "files",
}  # astro_exp/<name>.py, used by all


def _stage(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "astro_exp":
        return None
    if len(parts) == 1 or parts[1] in CORE:
        return "<core>"
    return parts[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return out


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def test_every_folder_is_a_known_stage() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    files = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert folders <= set(STAGES), (
        f"new folder(s) {folders - set(STAGES)}: give them a stage here and in docs/architecture.md"
    )
    assert files <= CORE | {"train"}, f"new top-level module(s) {files - CORE - {'train'}}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_only_run_downstream(path: Path) -> None:
    rel = path.relative_to(PACKAGE)
    me = (
        "<core>"
        if len(rel.parts) == 1 and rel.stem in CORE | {"__init__"}
        else (rel.parts[0] if len(rel.parts) > 1 else rel.stem)
    )
    bad = []
    for line, module in _imports(path):
        if module.split(".")[0] == "tests":
            bad.append(f"line {line}: {module} (the package must not import tests/)")
            continue
        other = _stage(module)
        if other is None or other == me or module == "astro_exp":
            continue
        if STAGES[other] > STAGES[me] or (STAGES[other] == STAGES[me] and other != me):
            bad.append(f"line {line}: {me} imports {module} ({other} is downstream)")
    assert not bad, "; ".join(bad)
