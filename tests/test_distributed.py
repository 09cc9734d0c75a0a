"""--device and several processes (issue #28): device errors, the data pipeline's placements, the
global batch of a DDP run, and real 2-process gloo runs through `xnorflow train --nproc 2`:
Ctrl-C and resume bit-identical, a killed process, another process count on resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from xnorflow.cli import main
from xnorflow.train import distributed
from xnorflow.train.augment import Affine, CropFlip, Shift, rows_of
from xnorflow.train.configs import TrainConfig
from xnorflow.train.devices import DeviceUnavailable, resolve_device

CLI = [sys.executable, "-m", "xnorflow.cli"]
# digits, TFC, 3 epochs: a few seconds per process
SMALL_RUN = ["--model", "tfc", "--epochs", "3", "--batch-size", "50", "--no-progress",
             "--threads", "1"]


def model_tensors(run: Path) -> dict:
    return torch.load(run / "model.pt", weights_only=True)["model"]


def identical(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------- --device
@pytest.mark.parametrize("device,expected", [("cuda", "no usable GPU"),
                                             ("cuda:7", "no usable GPU")])
def test_a_gpu_the_machine_lacks_is_a_usage_error(device, expected, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code = main(["train", "--device", device, "--out", str(tmp_path / "run"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert expected in err and "--device cpu" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_device_names_are_checked_at_the_door(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--device", "gpu0", "--out", str(tmp_path / "run")])
    assert exit_.value.code == 2
    assert "auto, cpu, cuda or cuda:N" in capsys.readouterr().err


def test_local_binary_has_no_device_option(tmp_path, capsys):
    code = main(["train", "--algo", "local-binary", "--device", "cpu",
                 "--out", str(tmp_path / "run")])
    assert code == 2
    assert "--device: only for --algo proxconnect or vispa" in capsys.readouterr().err


def test_resolve_device_against_the_gpus_there_are(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(DeviceUnavailable, match=r"has 1 GPU \(cuda:0\)"):
        resolve_device("cuda:7")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setenv("LOCAL_RANK", "2")  # under torchrun: the process's own GPU
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert resolve_device("cuda") == torch.device("cuda", 2)
    assert resolve_device("auto") == torch.device("cuda", 2)
    with pytest.raises(DeviceUnavailable, match="need one each; use --device cuda"):
        resolve_device("cuda:1")     # one GPU named for four processes
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    for spec in ("cuda", "auto"):    # two processes would share a GPU: NCCL refuses that
        with pytest.raises(DeviceUnavailable, match="8 processes on this machine but 4 GPUs"):
            resolve_device(spec)


def test_runs_record_their_device_and_older_runs_read_as_cpu(tmp_path):
    assert TrainConfig.recorded_options({"model": "sfc", "quantizer": "bnn"})["device"] == "cpu"
    assert main(["train", *SMALL_RUN, "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (summary["device"], summary["processes"]) == ("cpu", 1)
    record = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert (record["device"], record["processes"]) == ("cpu", 1)


# ---------------------------------------------------------------------------- data pipeline
def test_host_placement_with_loader_workers_trains_bit_identically(tmp_path, monkeypatch):
    from xnorflow.train.trainer import Trainer

    states = {}
    for placement in ("device", "host"):
        monkeypatch.setattr(Trainer, "placement", placement)
        trainer = Trainer(TrainConfig(model="tfc", epochs=2, threads=1, augment="shift"),
                          tmp_path / placement, show_progress=False, verbose=False)
        assert trainer.train_images.placement == placement
        assert trainer.train_images.images.dtype == torch.int8  # +-1 images stored compactly
        trainer.fit()
        states[placement] = trainer.model.state_dict()
    assert identical(states["device"], states["host"])


@pytest.mark.parametrize("augmentation", [CropFlip(fill=-1.0), Shift((1, 6, 5), fill=-1.0),
                                          Affine((1, 6, 5))])
def test_augmenting_shares_of_a_batch_equals_augmenting_the_batch(augmentation):
    images = torch.randn(9, 6, 5, 1).sign()
    drawn = augmentation.draw(9, torch.Generator().manual_seed(4))
    whole = augmentation.apply(images, drawn)
    for world in (2, 3, 4):
        parts = []
        for rank in range(world):
            share = distributed.Ranks(rank, world).share(9)
            parts.append(augmentation.apply(images[share], rows_of(drawn, share)))
        assert torch.equal(torch.cat(parts), whole)


def test_shares_split_every_batch_exactly():
    for world in (1, 2, 3, 8):
        for count in (1, 7, 8, 100):
            shares = [distributed.Ranks(r, world).share(count) for r in range(world)]
            rows = [i for s in shares for i in range(count)[s]]
            assert rows == list(range(count))
            sizes = [s.stop - s.start for s in shares]
            assert max(sizes) - min(sizes) <= 1


# ---------------------------------------------------------------------------- global batch
def _one_step_gradients(rank: int, world: int, port: int, out: str, batch: int = 37) -> None:
    """Gradients of one training step of an MLP with BatchNorm and TensorNorm on a batch of
    ``batch`` (37: an uneven split; 3 over 4 processes: one process's share is empty),
    computed by ``world`` gloo processes."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    import torch.distributed as dist

    from xnorflow.train.models import BinaryMLP

    if world > 1:
        dist.init_process_group("gloo", rank=rank, world_size=world)
    ranks = distributed.Ranks(rank, world)
    torch.manual_seed(0)
    model = BinaryMLP(20, 5, [16, 16], "bnn")
    images = torch.randn(batch, 20, generator=torch.Generator().manual_seed(1)).sign()
    labels = torch.randint(0, 5, (batch,), generator=torch.Generator().manual_seed(2))
    network = distributed.wrap(model, ranks, torch.device("cpu"))
    share = ranks.share(batch)
    loss, summed = distributed.share_loss(network(images[share]), labels[share], batch, ranks)
    loss.backward()
    total = ranks.sum([summed.item()], "cpu").item()
    if rank == 0:
        state = {f"grad.{k}": p.grad for k, p in model.named_parameters()}
        state.update({f"buffer.{k}": b for k, b in model.named_buffers()})
        state["loss"] = torch.tensor(total)
        torch.save(state, f"{out}/world{world}-{batch}.pt")
    if world > 1:
        # leave as xnorflow's processes do: destroying a gloo group at exit can deadlock (its
        # thread waits for the GIL that the joining thread holds)
        dist.barrier()
        os._exit(0)


@pytest.mark.parametrize("world, batch", [(2, 37), (4, 3)])
def test_ddp_gradients_and_statistics_are_those_of_the_global_batch(world, batch, tmp_path):
    import torch.multiprocessing as mp

    _one_step_gradients(0, 1, 0, str(tmp_path), batch)
    mp.spawn(_one_step_gradients,
             args=(world, 29400 + os.getpid() % 500 + world, str(tmp_path), batch), nprocs=world)
    one, many = (torch.load(tmp_path / f"world{w}-{batch}.pt") for w in (1, world))
    assert one.keys() == many.keys()
    for key in one:
        if one[key].dtype.is_floating_point:
            torch.testing.assert_close(many[key], one[key], rtol=1e-4, atol=1e-5, msg=key)
        else:
            assert torch.equal(many[key], one[key]), key


# ---------------------------------------------------------------------------- 2 processes
def run_cli(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def start_cli(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def wait_for(path: Path, process: subprocess.Popen, seconds: float = 120) -> None:
    end = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < end, f"{path} did not appear"
        time.sleep(0.05)


def wait_for_change(path: Path, process: subprocess.Popen, seconds: float = 120) -> None:
    before = path.stat().st_mtime_ns
    end = time.monotonic() + seconds
    while path.stat().st_mtime_ns == before:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < end, f"{path} was not written again"
        time.sleep(0.05)


def workers_of(process: subprocess.Popen) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory) -> Path:
    """An uninterrupted 2-process run."""
    run = tmp_path_factory.mktemp("ddp") / "whole"
    done = run_cli(["train", *SMALL_RUN, "--nproc", "2", "--out", str(run)])
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("done: final test accuracy") == 1  # rank 0 speaks, once
    assert done.stdout.count("epoch   3/3") == 1
    return run


def test_two_processes_ctrl_c_then_resume_is_bit_identical(two_process_run, tmp_path):
    run = tmp_path / "run"
    process = start_cli(["train", *SMALL_RUN, "--nproc", "2", "--out", str(run)])
    wait_for(run / "checkpoint.pt", process)
    os.killpg(process.pid, signal.SIGINT)   # Ctrl-C in a terminal: the whole process group
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err.count("interrupted") == 1 and "Traceback" not in err, err
    assert f"xnorflow train --resume --out {run} --nproc 2" in err
    if (run / "model.pt").exists():
        pytest.skip("the run finished before the signal reached it")
    resumed = run_cli(["train", "--resume", "--nproc", "2", "--out", str(run), "--no-progress"])
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed" in resumed.stdout and "note:" not in resumed.stdout
    assert identical(model_tensors(run), model_tensors(two_process_run))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["processes"] == 2


def test_a_killed_process_stops_the_others_and_the_run_resumes(tmp_path):
    run = tmp_path / "run"
    process = start_cli(["train", *SMALL_RUN, "--epochs", "200", "--nproc", "2",
                         "--out", str(run)])
    wait_for(run / "checkpoint.pt", process)
    victim = max(workers_of(process))
    killed_at = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    out, err = process.communicate(timeout=120)
    assert time.monotonic() - killed_at < 60
    assert process.returncode == 1, err
    assert "was ended by SIGKILL" in err and "Traceback" not in err, err
    assert f"--resume --out {run} --nproc 2" in err
    epochs = torch.load(run / "checkpoint.pt", weights_only=True)["epoch"]
    assert epochs >= 1
    # resumed with one process: allowed, and said
    resumed = start_cli(["train", "--resume", "--out", str(run), "--no-progress"])
    wait_for_change(run / "checkpoint.pt", resumed)   # an epoch of the resumed run is saved
    os.killpg(resumed.pid, signal.SIGINT)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 130, err
    assert "note: the run continues with processes 2 -> 1" in out, out


def test_process_options_that_cannot_work_are_refused(tmp_path, capsys):
    assert main(["train", "--algo", "local-binary", "--nproc", "2",
                 "--out", str(tmp_path / "a")]) == 2
    assert "trains in one process" in capsys.readouterr().err
    assert main(["train", "--nnodes", "2", "--out", str(tmp_path / "b")]) == 2
    assert "--rdzv HOST:PORT" in capsys.readouterr().err
    assert main(["train", "--rdzv", "localhost:1234", "--out", str(tmp_path / "c")]) == 2
    assert not any(tmp_path.iterdir())


def test_a_two_process_model_exports_and_builds_bit_exactly(two_process_run, tmp_path):
    from xnorflow.stages.build import BuildOptions, build_stage

    done = run_cli(["export", str(two_process_run), "--out", str(tmp_path / "m.onnx"),
                    "--verify", "200"])
    assert done.returncode == 0, done.stderr
    assert "200/200 identical" in done.stdout, done.stdout
    result = build_stage(two_process_run, tmp_path / "build", BuildOptions(target_fps=100_000),
                         verify=200, progress=False)
    assert result.comparisons and all(c.identical for c in result.comparisons), \
        [c.summary() for c in result.comparisons]


@pytest.mark.slow
def test_two_process_sfc_on_mnist_resumes_bit_identically_and_builds_bit_exactly(mnist_dir,
                                                                                   tmp_path):
    """The issue's acceptance run: SFC on real MNIST, 2 gloo processes, Ctrl-C after the first
    epoch, resumed: the same model.pt as the uninterrupted 2-process run, and every FINN stage
    identical to PyTorch on 1,000 test images."""
    from xnorflow.stages.build import BuildOptions, build_stage

    args = ["train", "--model", "sfc", "--dataset", "mnist", "--data-dir", str(mnist_dir),
            "--epochs", "2", "--no-progress", "--nproc", "2"]
    whole = tmp_path / "whole"
    done = run_cli([*args, "--out", str(whole)], timeout=1800)
    assert done.returncode == 0, done.stderr
    run = tmp_path / "run"
    process = start_cli([*args, "--out", str(run)])
    wait_for(run / "checkpoint.pt", process, seconds=900)
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130, err
    assert not (run / "model.pt").exists()
    resumed = run_cli(["train", "--resume", "--nproc", "2", "--out", str(run), "--no-progress"],
                      timeout=1800)
    assert resumed.returncode == 0, resumed.stderr
    assert identical(model_tensors(run), model_tensors(whole))
    result = build_stage(run, tmp_path / "build", BuildOptions(target_fps=100_000), verify=1000,
                         progress=False)
    assert result.comparisons and all(c.identical for c in result.comparisons), \
        [c.summary() for c in result.comparisons]
    assert result.comparisons[-1].accuracy > 0.9
