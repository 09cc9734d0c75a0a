"""One import package, `xnorflow`, whose stages are the top-level folders; nothing else installed."""

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
                   "xnorflow/export/__init__.py", "xnorflow/hw/__init__.py"):
        assert module in names
    assert not any(n.startswith(("xnorflow/tests", "xnorflow/benchmarks")) for n in names)


def test_stages_import_from_the_package():
    import xnorflow.export
    import xnorflow.hw
    import xnorflow.train.trainer

    assert xnorflow.train.trainer.__name__ == "xnorflow.train.trainer"
