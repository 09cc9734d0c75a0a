"""The package's dependencies run one way: the parts below import nothing from the parts above.

stages (what the command calls) -> explore -> hw.deploy, hw.sim, hw.rtl, hw.hls -> hw.finn ->
export, train -> errors, options, outputs. Read from the source (every import, also the ones inside
functions), so a circle cannot hide in a lazy import."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# package -> the xnorflow packages it must not import
FORBIDDEN = {
    "hw/finn": ("xnorflow.hw.sim", "xnorflow.hw.deploy", "xnorflow.hw.hls", "xnorflow.stages",
                "xnorflow.explore", "xnorflow.cli"),
    "hw/sim": ("xnorflow.hw.deploy", "xnorflow.hw.hls", "xnorflow.stages", "xnorflow.explore",
               "xnorflow.cli"),
    "hw/hls": ("xnorflow.hw.finn", "xnorflow.hw.sim", "xnorflow.hw.deploy", "xnorflow.stages",
               "xnorflow.explore", "xnorflow.cli"),
    "hw/deploy": ("xnorflow.stages", "xnorflow.explore", "xnorflow.cli"),
    "hw/rtl": ("xnorflow.hw.sim", "xnorflow.hw.deploy", "xnorflow.hw.hls", "xnorflow.stages",
               "xnorflow.explore", "xnorflow.cli"),
    "train": ("xnorflow.hw", "xnorflow.export", "xnorflow.stages", "xnorflow.explore",
              "xnorflow.cli"),
    "export": ("xnorflow.hw", "xnorflow.stages", "xnorflow.explore", "xnorflow.cli"),
    "explore": ("xnorflow.cli",),
    "stages": ("xnorflow.cli",),
}
LEAVES = ("errors.py", "options.py", "outputs.py", "interrupts.py", "progress.py",
          "hw/finn/options.py", "hw/finn/layout.py", "hw/toolchain.py", "hw/divisors.py",
          "hw/rtl/tools.py")


def module_of(path: Path) -> str:
    return "xnorflow." + ".".join(path.relative_to(ROOT).with_suffix("").parts)


def imports_of(source: str, module: str, top_level_only: bool = False) -> set[str]:
    """Every module the ``source`` of ``module`` imports, as absolute names (with
    ``top_level_only``, only the imports that run when the module is imported)."""
    package = module[:-9] if module.endswith(".__init__") else module.rsplit(".", 1)[0]
    found = set()
    tree = ast.parse(source)
    for node in (tree.body if top_level_only else ast.walk(tree)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_nothing_from_above_it(package):
    offenders = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = sorted(m for m in imports_of(path.read_text(), module_of(path))
                     if any(m == f or m.startswith(f + ".") for f in FORBIDDEN[package]))
        if bad:
            offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}


@pytest.mark.parametrize("leaf", LEAVES)
def test_leaf_modules_import_no_heavy_library_when_imported(leaf):
    heavy = ("torch", "brevitas", "finn", "qonnx", "onnx", "numpy", "tqdm")
    path = ROOT / leaf
    found = {m for m in imports_of(path.read_text(), module_of(path), top_level_only=True)
             if m.split(".")[0] in heavy}
    if leaf == "progress.py":  # the bars themselves are tqdm's
        found -= {"tqdm", "tqdm.tqdm"}
    assert found == set()


def test_the_checker_sees_a_lazy_import_and_resolves_relative_names():
    """The check itself can fail: a function-level import of a stage from hw/finn is found."""
    source = "import numpy\ndef f():\n    from ...stages.build import build_stage\n"
    found = imports_of(source, "xnorflow.hw.finn.probe")
    assert {"xnorflow.stages.build", "numpy"} <= found
    assert "xnorflow.stages.build" not in imports_of(source, "xnorflow.hw.finn.probe",
                                                     top_level_only=True)
