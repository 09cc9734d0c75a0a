import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


def _data_dir(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        if os.environ.get("CI") == "true":  # CI must have the data; a skip there would hide it
            pytest.fail(f"{path} is missing on CI")
        pytest.skip(f"real data not found at {path}")
    return path


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
