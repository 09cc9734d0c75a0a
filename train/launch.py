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

from ..errors import UsageError, XnorflowError
from .distributed import resume_command

ELASTIC_LOGGERS = ("torch.distributed.elastic", "torch.distributed.launcher")
SHUTDOWN_SECONDS = 300


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


def launch(argv: list[str], nproc: int, nnodes: int = 1, rdzv: str | None = None,
           threads_given: bool = False, run_folder: str = "the run folder") -> int:
    """Run ``xnorflow <argv>`` as ``nproc`` processes here (times ``nnodes`` machines)."""
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
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nproc))
    config = LaunchConfig(
        min_nodes=nnodes, max_nodes=nnodes, nproc_per_node=nproc,
        run_id=f"xnorflow-{uuid.uuid4().hex[:8]}" if rdzv is None else "xnorflow",
        rdzv_backend="c10d", rdzv_endpoint=rdzv or "localhost:0",
        rdzv_configs={"timeout": 600}, max_restarts=0, monitor_interval=0.5,
        # after Ctrl-C the processes stop at their next step: give a slow step (a large CNN on
        # CPUs) time to end and rank 0 time to say what was saved, before SIGKILL
        shutdown_timeout=SHUTDOWN_SECONDS)
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
