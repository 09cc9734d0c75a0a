"""``xnorflow train --nproc N``: start the processes of a distributed run with PyTorch's own
elastic agent (what ``torchrun`` runs), and answer for them.

Each process is ``python -m xnorflow.cli train`` with the same arguments; the agent gives it
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``, and :mod:`xnorflow.train.distributed` does the rest.
Rank 0 prints the run's lines and errors; this launcher adds only what no process can say (a
process killed from outside) and returns rank 0's exit code. ``--nnodes M --rdzv HOST:PORT``
on each of M machines joins them into one run (c10d rendezvous at HOST:PORT, the first
machine); the run folder must then be on a file system the machines share.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import uuid
from pathlib import Path

from ..errors import UsageError, XnorflowError
from .distributed import resume_command

ELASTIC_LOGGERS = ("torch.distributed.elastic", "torch.distributed.launcher")
# after Ctrl-C or SIGTERM the processes stop at their next agreement point; one that has not
# after this long (a slow step, or one still starting: waiting for the others, loading) is
# killed. Nothing is lost by it: the last finished epoch's checkpoint is written whole or not
# at all.
SHUTDOWN_SECONDS = 10
# the memory one process of a CPU run holds at the least (its resident set, torch's libraries
# included), measured here with psutil during `train --nproc 2 --threads 1` (torch 2.x, CPU
# build): 425-456 MB per process for TFC on digits, 623-645 MB for SFC on MNIST; larger models
# and data sets take more, so the check refuses only what cannot fit
WORKER_MEGABYTES = 450
LAUNCHER_PID = "XNORFLOW_LAUNCHER_PID"   # set for the processes: whom they die with
PR_SET_PDEATHSIG = 1                     # <linux/prctl.h>


def check_rdzv(endpoint: str) -> None:
    """Refuse an ``--rdzv`` that is not HOST:PORT as a bad option (exit 2), before any process
    starts: torch's agent would fail on it deep inside, or wait on a port that cannot exist."""
    text = endpoint.strip()
    bracketed = text.startswith("[")   # an IPv6 address: [fe80::1]:29400
    if bracketed:
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    problems = []
    if not sep:
        problems.append("no port")
    elif not port.isdigit():
        problems.append(f"the port {port!r} is not a number" if port else "no port after ':'")
    elif not 1 <= int(port) <= 65535:
        problems.append(f"the port {port} is not in 1-65535")
    if sep and not host:
        problems.append("no host before ':'")
    elif sep and not bracketed and ":" in host:
        problems.append("an IPv6 address goes in brackets")
    elif sep and not re.fullmatch(r"[0-9A-Fa-f:.]+" if bracketed else r"[\w.-]+", host):
        problems.append(f"{host!r} is not a host name or address")
    if problems:
        raise UsageError(f"--rdzv {endpoint!r}: {'; '.join(problems)}. Give HOST:PORT, the first "
                         f"machine's name or address and a free port on it (e.g. "
                         f"node0:29500, or [fe80::1]:29500 for an IPv6 address), the same on "
                         f"every machine.")


def usable_cores() -> int:
    """The cores this process may run on: its affinity, within a cgroup's CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return cores


def available_megabytes() -> int | None:
    """Memory that new processes can take without swapping (/proc/meminfo's MemAvailable,
    within a cgroup's limit); None where the system does not say."""
    try:
        meminfo = Path("/proc/meminfo").read_text()
        available = int(re.search(r"MemAvailable:\s+(\d+) kB", meminfo)[1]) // 1024
    except (OSError, TypeError):
        return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max":
            available = min(available, (int(limit) - used) // 2**20)
    except (OSError, ValueError):
        pass
    return available


def check_capacity(nproc: int) -> None:
    """Refuse, before any process starts, more processes than this machine can hold: one core
    each (torch's threads are shared out, at least one per process), and WORKER_MEGABYTES of
    memory each. Beyond that they start (minutes of imports) and never train."""
    cores = usable_cores()
    memory = available_megabytes()
    by_memory = memory // WORKER_MEGABYTES if memory is not None else nproc
    fits = max(1, min(cores, by_memory))
    if nproc <= fits:
        return
    held = (f"{cores} core{'s' if cores != 1 else ''}" + (
        f" and {memory / 1024:.1f} GiB of memory available (a process takes about "
        f"{WORKER_MEGABYTES} MB)" if memory is not None else ""))
    raise UsageError(f"--nproc {nproc}: this machine has {held}; at most {fits} "
                     f"process{'es' if fits != 1 else ''} fit{'s' if fits == 1 else ''} "
                     f"(one core each). Use --nproc {fits} or fewer, or spread the run over "
                     f"several machines with --nnodes and --rdzv.")


def die_with_launcher() -> None:
    """In a process of a run: end when the command that started it ends, also when that is
    killed outright (SIGKILL), instead of training on as an orphan. Linux sends the process
    SIGTERM when its parent dies, which it takes as Ctrl-C (it stops at the next agreement
    point; the last finished epoch is kept)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    launcher = int(os.environ.get(LAUNCHER_PID, os.getppid()))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
        return
    if os.getppid() != launcher:   # it died before the signal was set: nothing will send it
        os.kill(os.getpid(), signal.SIGTERM)


def launch(argv: list[str], nproc: int, nnodes: int = 1, rdzv: str | None = None,
           threads_given: bool = False, run_folder: str = "the run folder") -> int:
    """Run ``xnorflow <argv>`` as ``nproc`` processes here (times ``nnodes`` machines)."""
    check_capacity(nproc)
    # the agent's own lines would bury rank 0's messages: its loggers take their level from
    # LOGLEVEL when created, and some exist before this function runs
    os.environ.setdefault("LOGLEVEL", "CRITICAL")
    from torch.distributed.elastic.multiprocessing import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    for name in list(logging.root.manager.loggerDict):
        if name.startswith(ELASTIC_LOGGERS):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    if not threads_given and "OMP_NUM_THREADS" not in os.environ:
        # as torchrun: the cores shared among this machine's processes, not each taking all
        os.environ["OMP_NUM_THREADS"] = str(max(1, usable_cores() // nproc))
    config = LaunchConfig(
        min_nodes=nnodes, max_nodes=nnodes, nproc_per_node=nproc,
        run_id=f"xnorflow-{uuid.uuid4().hex[:8]}" if rdzv is None else "xnorflow",
        rdzv_backend="c10d", rdzv_endpoint=rdzv or "localhost:0",
        rdzv_configs={"timeout": 600}, max_restarts=0, monitor_interval=0.5,
        shutdown_timeout=SHUTDOWN_SECONDS)
    os.environ[LAUNCHER_PID] = str(os.getpid())   # (the processes inherit it)
    try:
        elastic_launch(config, entrypoint=sys.executable)("-m", "xnorflow.cli", *argv)
    except ChildFailedError as err:
        return _failed(err.failures, nproc, nnodes, run_folder)
    except SignalException as err:
        # the agent stopped the processes; rank 0 said what was saved
        return 130 if err.sigval in (signal.SIGINT, signal.SIGTERM) else 1
    except Exception as err:  # rendezvous problems: unreachable endpoint, timeout
        raise XnorflowError(f"the processes of the run could not meet at "
                            f"{rdzv or 'localhost'} ({type(err).__name__}: "
                            f"{str(err).splitlines()[0] if str(err) else 'no detail'}). "
                            f"Check --rdzv HOST:PORT on every machine and that the port is "
                            f"open.") from None
    finally:
        os.environ.pop(LAUNCHER_PID, None)
    return 0


def _failed(failures: dict, nproc: int, nnodes: int, run_folder: str) -> int:
    """Rank 0's exit code; a line for each process that a signal from outside ended."""
    world = nproc * nnodes
    for rank, failure in sorted(failures.items()):
        if failure.exitcode < 0:
            name = signal.Signals(-failure.exitcode).name
            print(f"error: process {rank} of {world} was ended by {name}; the other processes "
                  f"were stopped. Continue from the last finished epoch with: "
                  f"{resume_command(run_folder, nproc, nnodes)}", file=sys.stderr)
    main = failures.get(0)
    if main is not None and main.exitcode > 0:
        return main.exitcode
    codes = [f.exitcode for f in failures.values() if f.exitcode > 0]
    return 130 if 130 in codes else 1
