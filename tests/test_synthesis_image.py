"""The synthesis image's parts that run without Vivado: the entry script's checks on stand-in
Xilinx installations (folders with settings64.sh files and tool stand-ins, not the tools), the
Dockerfile's targets, finn-plus' dependency list, and the build's Vivado version check."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from xnorflow.hw.finn.env import SUPPORTED_VIVADO, unsupported_vivado

ROOT = Path(__file__).resolve().parents[1]
ENTRYPOINT = ROOT / "hw" / "finn" / "vivado" / "entrypoint.sh"


def _install(root: Path, tool_dir: str, version: str, tools: tuple[str, ...],
             sets_vivado: bool = False) -> None:
    """A stand-in <root>/<tool_dir>/<version> whose settings64.sh puts ``tools`` on PATH."""
    home = root / tool_dir / version
    (home / "bin").mkdir(parents=True)
    for tool in tools:
        (home / "bin" / tool).write_text(f"#!/bin/sh\necho {tool} {version}\n")
        (home / "bin" / tool).chmod(0o755)
    export = f"export XILINX_VIVADO={home}\n" if sets_vivado else ""
    (home / "settings64.sh").write_text(f"export PATH={home}/bin:$PATH\n{export}"
                                        f"[ -z \"$UNSET_BY_DESIGN\" ] || true\n")


def _vivado(root: Path, version: str, hls_dir: str = "Vitis_HLS") -> None:
    _install(root, "Vivado", version, ("vivado",), sets_vivado=True)
    if hls_dir:
        _install(root, hls_dir, version, ("vitis_hls",))


def _enter(root: Path, *command: str, **env: str) -> subprocess.CompletedProcess:
    environment = {"PATH": "/usr/bin:/bin", "XILINX_ROOT": str(root),
                   "HOME": str(root.parent), **env}
    return subprocess.run(["bash", str(ENTRYPOINT), *command], capture_output=True, text=True,
                          env=environment, timeout=60)


def test_entrypoint_and_python_agree_on_the_supported_versions():
    listed = re.search(r'^SUPPORTED_VERSIONS="([^"]+)"', ENTRYPOINT.read_text(), re.M).group(1)
    assert tuple(listed.split()) == SUPPORTED_VIVADO == ("2022.2", "2024.2")


@pytest.mark.parametrize("version, hls_dir", [("2022.2", "Vitis_HLS"), ("2024.2", "Vitis")])
def test_a_supported_installation_is_sourced_and_the_command_runs(tmp_path, version, hls_dir):
    root = tmp_path / "Xilinx"
    _vivado(root, version, hls_dir)
    result = _enter(root, "bash", "-c", "vivado; vitis_hls; echo XILINX_VIVADO=$XILINX_VIVADO")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"vivado {version}", f"vitis_hls {version}",
                                          f"XILINX_VIVADO={root}/Vivado/{version}"]
    assert f"Vivado {version} from {root}" in result.stderr


def test_the_command_keeps_its_arguments_and_exit_code(tmp_path):
    root = tmp_path / "Xilinx"
    _vivado(root, "2022.2")
    result = _enter(root, "bash", "-c", 'echo "$1|$2"; exit 7', "-", "a b", "c")
    assert result.returncode == 7 and result.stdout == "a b|c\n"


@pytest.mark.parametrize("setup, env, message", [
    (lambda root: None, {}, "no Xilinx tools at {root}. Mount the host's installation"),
    (lambda root: root.mkdir(), {}, "holds no Vivado"),
    (lambda root: _vivado(root, "2023.1"), {},
     "Vivado 2023.1 at {root} is not supported by finn-plus 1.6.1; install 2022.2 or 2024.2"),
    (lambda root: _vivado(root, "2022.2", hls_dir=""), {},
     "Vivado 2022.2 found, but no Vitis HLS 2022.2"),
    (lambda root: (_vivado(root, "2022.2"), _vivado(root, "2024.2", "Vitis")), {},
     "several supported versions (2022.2 2024.2); choose one with -e XILINX_VERSION"),
    (lambda root: _vivado(root, "2022.2"), {"XILINX_VERSION": "2024.2"},
     "XILINX_VERSION=2024.2, but {root}/Vivado/2024.2/settings64.sh does not exist"),
    (lambda root: _vivado(root, "2022.2"), {"XILINX_VERSION": "2021.1"},
     "XILINX_VERSION=2021.1 is not supported"),
    (lambda root: (_install(root, "Vivado", "2022.2", (), sets_vivado=True),
                   _install(root, "Vitis_HLS", "2022.2", ("vitis_hls",))), {},
     "did not put vivado on PATH"),
    (lambda root: (_install(root, "Vivado", "2022.2", ("vivado",)),
                   _install(root, "Vitis_HLS", "2022.2", ("vitis_hls",))), {},
     "did not set XILINX_VIVADO"),
], ids=["no-mount", "empty-mount", "unsupported", "no-hls", "ambiguous", "chosen-missing",
        "chosen-unsupported", "no-binary", "no-env"])
def test_what_is_wrong_is_said_before_the_command_runs(tmp_path, setup, env, message):
    root = tmp_path / "Xilinx"
    setup(root)
    marker = tmp_path / "ran"
    result = _enter(root, "touch", str(marker), **env)
    assert result.returncode == 3
    assert message.format(root=root) in result.stderr
    assert not marker.exists()


def test_a_container_user_without_a_home_gets_one(tmp_path):
    root = tmp_path / "Xilinx"
    _vivado(root, "2022.2")
    result = _enter(root, "bash", "-c", 'echo "$HOME"; test -w "$HOME"',
                    HOME="/nonexistent-xnorflow")
    assert result.returncode == 0 and result.stdout.strip() == "/tmp/xnorflow-home"


def test_dockerfile_has_the_synthesis_target_on_the_one_install_path():
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+) AS (\S+)$", text, re.M)
    assert stages == [("ubuntu:22.04", "synthesis"), ("python:3.11-slim", "xnorflow")]
    synthesis = text.split("AS synthesis")[1].split("AS xnorflow")[0]
    assert "PYTHON=python3.11 VENV=/opt/venv bash install.sh" in synthesis
    assert 'python -m xnorflow.hw.finn.deps "$FINN_DEPS"' in synthesis
    entry = re.search(r'^ENTRYPOINT \["/opt/xnorflow/(\S+)"\]', synthesis, re.M).group(1)
    assert (ROOT / entry) == ENTRYPOINT and os.access(ENTRYPOINT, os.X_OK)
    readme = (ROOT / "README.md").read_text()
    assert "docker build --target synthesis -t xnorflow-synthesis ." in readme
    assert "-v /tools/Xilinx:/tools/Xilinx:ro" in readme


def test_the_c_simulation_finds_finn_hlslib_where_the_fetch_puts_it(tmp_path, monkeypatch,
                                                                    finn_hlslib):
    """The image's fetch (and a user's `python -m xnorflow.hw.finn.deps`) writes finn-plus'
    pinned finn-hlslib into $FINN_DEPS, else into xnorflow's cache; the C simulation looks in
    both places. (The fetch itself needs git and the network: not run here.)"""
    from xnorflow.hw.finn.deps import HLSLIB, default_target, planned_dependencies
    from xnorflow.hw.sim.cppsim import CppSimError, find_hlslib

    planned = planned_dependencies()
    assert planned[HLSLIB]["url"] == "https://github.com/Xilinx/finn-hlslib.git"
    assert re.fullmatch(r"[0-9a-f]{40}", planned[HLSLIB]["commit"])
    (tmp_path / HLSLIB).symlink_to(finn_hlslib)  # what the image build leaves in $FINN_DEPS
    monkeypatch.setenv("FINN_DEPS", str(tmp_path))
    assert find_hlslib() == finn_hlslib.resolve()
    monkeypatch.delenv("FINN_DEPS")
    monkeypatch.setenv("XNORFLOW_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(CppSimError) as missing:
        find_hlslib()
    assert "python -m xnorflow.hw.finn.deps" in str(missing.value)  # a fix that works without
    assert str(tmp_path / "cache" / "finn_deps" / HLSLIB) in str(missing.value)  # Vivado
    default_target().mkdir(parents=True)
    (default_target() / HLSLIB).symlink_to(finn_hlslib)
    assert find_hlslib() == finn_hlslib.resolve()


@pytest.mark.parametrize("path, problem", [
    ("/tools/Xilinx/Vivado/2022.2", None),
    ("/tools/Xilinx/2024.2/Vivado", None),
    ("/tools/Xilinx/Vivado/2023.1", "Vivado 2023.1; finn-plus 1.6.1 supports 2022.2 and 2024.2"),
    ("/opt/vivado", None),  # no version in the path: FINN itself decides
])
def test_build_refuses_an_unsupported_vivado(monkeypatch, path, problem):
    monkeypatch.setenv("XILINX_VIVADO", path)
    found = unsupported_vivado()
    assert (found is None) if problem is None else (problem in found)
