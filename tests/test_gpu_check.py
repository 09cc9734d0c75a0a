"""benchmarks/gpu_check.py (issue #28), the project's one script of CUDA checks: without a GPU
it says so and exits 0; its check runs end to end on the CPU (the CPU compared with itself)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_a_gpu_the_script_says_so_and_exits_0():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the script runs its checks")
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    assert "no GPU present" in lines[0] and torch.__version__ in lines[0]
    assert ("CPU-only build" if torch.version.cuda is None else "sees no GPU") in lines[0]


def test_the_check_runs_on_the_cpu_and_the_deployed_classes_agree(tmp_path):
    gpu_check = load_script()
    lines = []
    rows = gpu_check.check("cpu", steps=2, batch_size=4, images=8, out_dir=tmp_path,
                           log=lines.append)
    assert [(r["model"], r["algo"]) for r in rows] == [("cnv", "proxconnect"),
                                                       ("vgg-small", "proxconnect"),
                                                       ("cnv", "vispa")]
    for row in rows:
        assert row["ok"], row
        assert row["differing_classes"] == 0 and row["max_logit_diff"] == 0.0
        assert row["records_not_on_cpu"] == [] and row["resume_on_cpu"] == "ok"
        assert row["images"] == 8 and row["images_per_s"] > 0
        # the rebuilt model.pt scores what the trainer measured on the same images
        assert row["test_acc_cpu"] == pytest.approx(row["test_acc_recorded"])
        assert (tmp_path / f"{row['model']}-{row['algo']}" / "model.pt").is_file()
    assert [r["steps"] for r in rows] == [2, 2, 1]    # 2 epochs of 1 batch; VISPA: 1 step
    assert rows[0]["timed"] == "epoch 2"
    assert rows[2]["timed"] == "epoch 1, with the warm-up"
    table = gpu_check.markdown(rows, "python benchmarks/gpu_check.py", "random")
    assert table.count("\n| cnv |") == 2 and "| vgg-small | proxconnect | 2 | 4 |" in table
    assert len(lines) == 6


def test_a_gpu_tensor_in_a_record_is_found():
    gpu_check = load_script()
    record = {"model": {"w": torch.zeros(1)}, "history": [{"x": 1}], "optimizer": {
        "state": {0: {"exp_avg": torch.zeros(1, device="meta")}}}}
    assert gpu_check.tensors_not_on_cpu(record) == ["optimizer.state.0.exp_avg on meta"]


def test_run_length_plans():
    gpu_check = load_script()
    assert gpu_check.plan(300, 256) == (3, 100 * 256)
    assert gpu_check.plan(1, 8) == (1, 8)
    assert gpu_check.plan(100, 256) == (3, 34 * 256)
    assert gpu_check.plan(600, 256, available=50_000) == (4, 195 * 256)
