"""The project's own files agree: one install path, CI runs the README's test command, the
notebooks run."""

import json
import os
import re

from conftest import PROJECT_ROOT


def readme_commands():
    readme = (PROJECT_ROOT / "README.md").read_text()
    setup = readme.split("## Set-up")[1].split("\n## ")[0]
    return re.findall(r"```bash\n(.+?)\n```", setup, flags=re.S)


def test_readme_setup_is_two_commands_install_and_test():
    install, test = readme_commands()[:2]
    assert install.startswith("bash install.sh && ") and "xnorflow train" in install
    assert "pytest" in test


def test_ci_runs_exactly_the_readme_test_command_after_install_sh():
    ci_lines = [l for l in (PROJECT_ROOT / ".ci" / "run").read_text().splitlines()
                if l.strip() and not l.startswith("#")]
    assert "bash install.sh" in ci_lines
    assert ci_lines[-1] == readme_commands()[1]


def test_dockerfile_uses_the_same_install_script():
    assert "bash install.sh" in (PROJECT_ROOT / "Dockerfile").read_text()


def test_notebooks_run(tmp_path):
    for path in sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        cwd = os.getcwd()
        os.chdir(tmp_path)
        try:
            exec(compile(code, str(path), "exec"), {})
        finally:
            os.chdir(cwd)
        assert (tmp_path / "runs").is_dir(), path
