"""One import package, `xnorflow`, whose stages are the top-level folders; nothing else installed;
the command line starts without the heavy frameworks."""

import subprocess
import sys
import zipfile

from conftest import PROJECT_ROOT


def test_wheel_holds_only_the_xnorflow_package(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(tmp_path), str(PROJECT_ROOT)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("xnorflow-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names if not n.startswith("xnorflow-")}
    assert top_level == {"xnorflow"}
    for module in ("xnorflow/__init__.py", "xnorflow/cli.py", "xnorflow/train/trainer.py",
                   "xnorflow/export/__init__.py", "xnorflow/hw/__init__.py",
                   "xnorflow/hw/hls/templates/bmlp_kernels.h"):
        assert module in names
    assert not any(n.startswith(("xnorflow/tests", "xnorflow/benchmarks")) for n in names)


def test_the_parser_imports_no_heavy_framework():
    """`xnorflow --help` and option errors must answer at once: building every sub-command's
    parser imports none of torch, Brevitas, FINN, qonnx, numba, matplotlib or scikit-learn
    (a stage imports them when it runs; BENCHMARKS.md times the help)."""
    code = ("import sys; from xnorflow.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'brevitas', 'finn', 'qonnx', 'numba', "
            "'matplotlib', 'sklearn', 'onnx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
