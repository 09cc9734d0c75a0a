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
    """An SFC W1A1 trained for one epoch on real MNIST (shared by the export/build tests)."""
    from xnorflow.train.trainer import TrainConfig, Trainer

    out = tmp_path_factory.mktemp("sfc-mnist")
    config = TrainConfig(model="sfc", quantizer="bnn", dataset="mnist", data_dir=str(mnist_dir),
                         epochs=1, lr=5e-3, seed=0)
    Trainer(config, out, show_progress=False, verbose=False).fit()
    return out
