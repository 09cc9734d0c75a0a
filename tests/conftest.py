import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = PROJECT_ROOT.parent / "shared"
SHARED_DATA = SHARED / "data"


def _shared_dir(path: Path) -> Path:
    if not path.is_dir():
        if os.environ.get("CI") == "true":  # CI must have it; a skip there would hide it
            pytest.fail(f"{path} is missing on CI")
        pytest.skip(f"{path} not found")
    return path


def _data_dir(name: str) -> Path:
    return _shared_dir(SHARED_DATA / name)


@pytest.fixture(scope="session", autouse=True)
def private_cppsim_cache(tmp_path_factory):
    """Compiled cppsim layers go to a folder of the test session, not the user's cache."""
    before = os.environ.get("XNORFLOW_CACHE_DIR")
    os.environ["XNORFLOW_CACHE_DIR"] = str(tmp_path_factory.mktemp("xnorflow-cache"))
    yield
    if before is None:
        os.environ.pop("XNORFLOW_CACHE_DIR", None)
    else:
        os.environ["XNORFLOW_CACHE_DIR"] = before


@pytest.fixture(scope="session")
def finn_hlslib() -> Path:
    """finn-hlslib for FINN's C simulation (the copy beside the checkout; CI has it)."""
    return _shared_dir(SHARED / "deps" / "finn-hlslib")


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    return _data_dir("mnist")


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    return _data_dir("fashion-mnist")


@pytest.fixture(scope="session")
def mnist_sfc_run(tmp_path_factory, mnist_dir) -> Path:
    """An SFC W1A1 trained for two epochs on real MNIST (shared by the trainer, export and
    build tests)."""
    from xnorflow.train.configs import TrainConfig
    from xnorflow.train.trainer import Trainer

    out = tmp_path_factory.mktemp("sfc-mnist")
    config = TrainConfig(model="sfc", quantizer="bnn", dataset="mnist", data_dir=str(mnist_dir),
                         epochs=2, lr=5e-3, seed=0)
    Trainer(config, out, show_progress=False, verbose=False).fit()
    return out


@pytest.fixture
def ctrl_c_in_epoch_2(monkeypatch):
    """Training is interrupted (KeyboardInterrupt, as Ctrl-C) as its second epoch starts;
    call the returned function to train normally again."""
    from xnorflow.train.trainer import Trainer

    original = Trainer.train_epoch

    def interrupted_in_epoch_2(self, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(Trainer, "train_epoch", interrupted_in_epoch_2)
    return lambda: monkeypatch.setattr(Trainer, "train_epoch", original)


@pytest.fixture(scope="session")
def digits_tfc_run(tmp_path_factory) -> Path:
    """A TFC W1A1 trained for two epochs on the built-in digits (for tests that need a run
    folder, not an accuracy). Copy it before writing into it."""
    from xnorflow.train.configs import TrainConfig
    from xnorflow.train.trainer import Trainer

    out = tmp_path_factory.mktemp("tfc-digits") / "run"
    Trainer(TrainConfig(model="tfc", epochs=2), out, show_progress=False, verbose=False).fit()
    return out


def _postgres_bin() -> Path | None:
    """The folder of Debian's PostgreSQL server programs (initdb, pg_ctl), newest version."""
    import shutil

    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                   key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if found:
        return found[-1].parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).resolve().parent if pg_ctl else None


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server (Debian's package, installed by .ci/run) started on loopback
    for this test session: an empty cluster with trust authentication, a free port, its
    socket in a folder of the session; stopped at the end. Skipped, with the reason, only
    where the server cannot start."""
    import pwd
    import shutil
    import socket
    import subprocess
    import tempfile

    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL's server programs are not installed (Debian: apt-get install "
                    "postgresql; .ci/run does it)")
    # a folder of its own under the system's temporary directory: the server's user must
    # be able to reach it (pytest's own folders are private to this user)
    root = Path(tempfile.mkdtemp(prefix="xnorflow-postgres-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:   # the server refuses to run as root: Debian's postgres user runs it
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run the server")
        for path in (root, sockets):
            os.chown(path, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def run(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run([*as_user, *command], capture_output=True, text=True,
                              timeout=120)

    made = run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "xnorflow",
               "--no-sync")
    if made.returncode != 0:
        pytest.skip(f"initdb failed: {made.stderr.strip()[-300:]}")
    started = run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"),
                  "-w", "-o", f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 "
                  f"-c fsync=off", "start")
    if started.returncode != 0:
        log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
        pytest.skip(f"the PostgreSQL server did not start: {started.stderr.strip()[-300:]} "
                    f"{log[-300:]}")
    yield f"postgresql://xnorflow@127.0.0.1:{port}/postgres"
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
    shutil.rmtree(root, ignore_errors=True)
