"""The project's own files agree: one install path, CI runs the README's test command and
builds the documentation with warnings as errors, the notebooks run."""

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest
from conftest import PROJECT_ROOT


def readme_commands():
    readme = (PROJECT_ROOT / "README.md").read_text()
    setup = readme.split("## Set-up")[1].split("\n## ")[0]
    return re.findall(r"```bash\n(.+?)\n```", setup, flags=re.S)


def ci_lines():
    return [line for line in (PROJECT_ROOT / ".ci" / "run").read_text().splitlines()
            if line.strip() and not line.startswith("#")]


def test_readme_first_command_is_the_install_script_then_a_valid_train_command():
    from xnorflow.cli import build_parser

    install, then = readme_commands()[0].split(" && ")
    assert install == "bash install.sh"
    program, *argv = shlex.split(then)
    assert program == ".venv/bin/xnorflow"  # the console script install.sh puts in .venv
    assert build_parser().parse_args(argv).command == "train"  # exits 2 on a stale option


def test_ci_runs_exactly_the_readme_test_command_after_install_sh():
    lines = ci_lines()
    assert "bash install.sh" in lines
    assert lines[-1] == readme_commands()[1]


def test_ci_docs_build_fails_on_a_warning_and_passes_on_the_docs(tmp_path):
    """The documentation line of .ci/run, run on a copy of the site: it passes on docs/ as they
    are, and fails once a page links to a missing anchor (a flag such as --quiet would hide
    the warning from --strict and let it pass)."""
    command = next(line for line in ci_lines() if "mkdocs build" in line)
    assert ci_lines().index(command) < len(ci_lines()) - 1  # before the tests
    command = command.replace(".venv/bin/python", shlex.quote(sys.executable))
    shutil.copy(PROJECT_ROOT / "mkdocs.yml", tmp_path)
    shutil.copytree(PROJECT_ROOT / "docs", tmp_path / "docs")

    def build():
        return subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)

    built = build()
    assert built.returncode == 0, built.stderr
    assert "WARNING" not in built.stderr, built.stderr
    with open(tmp_path / "docs" / "index.md", "a") as page:
        page.write("\n[a broken link](install.md#no-such-section)\n")
    broken = build()
    assert broken.returncode != 0 and "no-such-section" in broken.stderr, broken.stderr


def test_dockerfile_uses_the_same_install_script():
    assert "bash install.sh" in (PROJECT_ROOT / "Dockerfile").read_text()


# What each notebook must print: (pattern, check of the captured numbers or None).
NOTEBOOK_RESULTS = {
    "01_train_digits": [
        (r"test accuracy of the binary network: ([\d.]+)%", lambda acc: float(acc) > 60),
        *[(rf"^{re.escape(name)}\s+([\d.]+)%$", lambda acc: float(acc) > 30)
          for name in ("bc", "pc", "bnn", "bnn+", "bnn++", "approxsign")],
    ],
    "02_export_and_build": [
        *[(rf"^{stage}: argmax 100/100 identical, logits 100/100", None)
          for stage in ("QONNX", "FINN-ONNX")],
        *[(rf"^{stage}: class 100/100 identical to PyTorch's argmax", None)
          for stage in ("streamlined", "hardware layers", "folded dataflow")],
        (r"^output: the class index, selected on chip", None),
        (r"^target 1,000,000 FPS (reached|MISSED)", None),
        (r"^resources fit Pynq-Z1", None),
        (r"^# xnorflow build: TFC W1A1 \(bnn, digits\) on Pynq-Z1", None),
    ],
    "03_local_binary_and_hls": [
        (r"test accuracy after 12 epochs: ([\d.]+)%", lambda acc: float(acc) > 40),
        (r"^engines identical: True$", None),
        (r"^QONNX: argmax 360/360 identical, logits 360/360", None),
        (r"C simulation vs Python trainer: 5/5 training steps identical .* inference "
         r"360/360 predictions identical", None),
    ],
    "04_explore_digits": [
        (r"^(\d) of 6 trials on the Pareto front", lambda n: 1 <= int(n) <= 6),
        (r"^#\d [^:]+: [\d.]+%, [\d,]+ FPS, LUT (\d+)%.*identical on 50 images$",
         lambda lut: int(lut) <= 80),
        (r"^\| trial \| test accuracy \| est. FPS", None),
        (r"^(\d) of 7 trials on the Pareto front; this command ran 1 trial",
         lambda n: 1 <= int(n) <= 7),
    ],
}


@pytest.mark.slow   # ~3 min: every notebook end to end
def test_notebooks_run_and_print_their_results(tmp_path):
    paths = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))
    assert [p.stem for p in paths] == sorted(NOTEBOOK_RESULTS)
    for path in paths:
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        printed = io.StringIO()
        cwd = os.getcwd()
        os.chdir(tmp_path)
        try:
            with contextlib.redirect_stdout(printed):
                exec(compile(code, str(path), "exec"), {})
        finally:
            os.chdir(cwd)
        output = printed.getvalue()
        for pattern, check in NOTEBOOK_RESULTS[path.stem]:
            found = re.search(pattern, output, flags=re.M)
            assert found, f"{path.name} did not print {pattern!r}:\n{output}"
            if check is not None:
                assert check(*found.groups()), f"{path.name}: {found.group(0)}"
