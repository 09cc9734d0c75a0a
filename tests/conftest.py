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


@pytest.fixture(scope="session")
def digits_tfc_run(tmp_path_factory) -> Path:
    """A TFC W1A1 trained for two epochs on the built-in digits (for tests that need a run
    folder, not an accuracy). Copy it before writing into it."""
    from xnorflow.train.configs import TrainConfig
    from xnorflow.train.trainer import Trainer

    out = tmp_path_factory.mktemp("tfc-digits") / "run"
    Trainer(TrainConfig(model="tfc", epochs=2), out, show_progress=False, verbose=False).fit()
    return out
