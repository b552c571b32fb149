"""The package's shape: layers depend one way, nothing private crosses a module boundary, docs stand alone.

These checks read the source (``ast``), so they fail on the line that breaks a rule.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("theory", "numerics", "validation", "memlab")
SOURCES = sorted(p for d in LAYERS + ("tests", "benchmarks") for p in (ROOT / d).rglob("*.py"))
#: What each layer may not import (validation -> numerics -> theory; torch only in validation).
FORBIDDEN = {"theory": {"numba", "torch", "memlab.numerics", "memlab.validation"},
             "numerics": {"torch", "memlab.validation"}, "memlab": {"torch"}}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _layer(path: Path) -> str:
    return path.relative_to(ROOT).parts[0]


def _module_parts(path: Path, node: ast.ImportFrom) -> list[str]:
    """The dotted module an ImportFrom names, resolved against the file's package (relative imports)."""
    if node.level == 0:
        return (node.module or "").split(".")
    pkg = list(path.relative_to(ROOT).parts[:-1])
    base = pkg[:len(pkg) - (node.level - 1)] if node.level > 1 else pkg
    return base + (node.module.split(".") if node.module else [])


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    layer = _layer(path)
    out, modules = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            parts = _module_parts(path, node)
            # a private module may be imported by its own layer only (memlab.numerics._x <- numerics/*)
            owner = next((p for p in parts if p in LAYERS[:3]), parts[0] if parts else "")
            foreign = owner != layer or (node.level == 0 and layer in ("tests", "benchmarks"))
            for a in node.names:
                is_module = (ROOT / owner / f"{a.name}.py").exists() if owner in LAYERS else False
                if _private(a.name) and (foreign or not is_module):
                    out.append(f"{path.name}:{node.lineno} imports the private name {a.name!r}")
                modules.add(a.asname or a.name)
            if any(_private(p) for p in parts) and foreign:
                out.append(f"{path.name}:{node.lineno} imports the private module {'.'.join(parts)!r}")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if any(_private(p) for p in a.name.split(".")):
                    out.append(f"{path.name}:{node.lineno} imports the private module {a.name!r}")
                modules.add((a.asname or a.name).split(".")[0])
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name)
                and node.value.id in modules):
            out.append(f"{path.name}:{node.lineno} uses the private name {node.value.id}.{node.attr}")
    return out


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_name_crosses_a_module_boundary(path):
    assert _violations(path) == []


def test_the_checker_catches_what_it_should(tmp_path):
    """The rule above is not vacuous: it flags each kind of crossing."""
    bad = tmp_path / "tests" / "t.py"
    bad.parent.mkdir()
    bad.write_text("from memlab.numerics import _kernels\nfrom memlab.theory.grid import _x\n"
                   "import memlab.validation.runtime as rt\nrt._save(1)\n")
    global ROOT
    old, ROOT = ROOT, tmp_path
    try:
        v = _violations(bad)
    finally:
        ROOT = old
    assert len(v) == 3, v


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_depend_one_way(layer):
    for path in (ROOT / layer).rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
                parts = _module_parts(path, node)
                if node.level:
                    parts = ["memlab"] + [("memlab" if p == "memlab" else p) for p in parts if p != "memlab"]
                names = [".".join(parts)]
            for n in names:
                for banned in FORBIDDEN[layer]:
                    assert not (n == banned or n.startswith(banned + ".")), f"{path} imports {n}"


def test_import_memlab_without_torch():
    code = "import sys, memlab, memlab.validation; assert 'torch' not in sys.modules; print('ok')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_docs_stand_alone():
    """No reference to documents outside the repository; the theory docs exist and the README links them."""
    # the words are split so that this line does not match itself
    pattern = re.compile("spe" + r"c ?(§|section|[0-9])|rf_time" + r"scales\.md|gmm_lab" + r"oratory\.md|mis" + "sion",
                         re.I)
    files = [p for d in LAYERS + ("tests", "benchmarks", "docs") for p in (ROOT / d).rglob("*")
             if p.suffix in (".py", ".md", ".txt", ".toml", ".json", ".csv")] + [ROOT / "README.md"]
    hits = [f"{p.relative_to(ROOT)}:{i + 1}" for p in files for i, line in enumerate(p.read_text().splitlines())
            if pattern.search(line)]
    assert hits == []
    for name in ("README.md", "capacity_crossover.md", "random_features.md", "memorization_metrics.md",
                 "validation.md"):
        assert (ROOT / "docs" / "theory" / name).stat().st_size > 1000
    assert "docs/theory" in (ROOT / "README.md").read_text()


def test_docs_sections_cited_in_code_exist():
    """Every ``docs/theory/<file>.md §N`` cited in the code names a section that exists."""
    cite = re.compile(r"docs/theory/(\w+)\.md §(\d+)")
    heads = {p.stem: set(re.findall(r"^#+ §(\d+)", p.read_text(), re.M)) for p in (ROOT / "docs" / "theory").glob("*.md")}
    missing = []
    for p in SOURCES + [ROOT / "README.md"]:
        for m in cite.finditer(p.read_text()):
            if m.group(2) not in heads.get(m.group(1), set()):
                missing.append(f"{p.relative_to(ROOT)}: {m.group(0)}")
    assert missing == []
