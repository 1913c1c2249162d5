"""The test setup keeps its promises: skip reasons are printed, and CI installs what the ZeRO-3 test needs and
runs exactly the README's test command."""

from __future__ import annotations

import configparser
import re
import subprocess
import sys

from conftest import REPO


def test_plain_pytest_prints_each_skip_reason(tmp_path):
    test = tmp_path / "test_skips.py"
    test.write_text("import pytest\n\ndef test_x():\n    pytest.skip('the shared data is absent here')\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(REPO / "pyproject.toml"),
         "--rootdir", str(tmp_path), str(test)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SKIPPED" in proc.stdout and "the shared data is absent here" in proc.stdout


def _readme_test_command() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("The second runs the tests:", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return block.strip()


def test_ci_installs_deepspeed_and_runs_the_readme_test_command():
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    extras = setup["options.extras_require"]
    assert re.search(r"^deepspeed\b", extras["distributed"].strip(), re.M)
    commands = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]  # fmt: skip
    installs = [c for c in commands if "pip install" in c and "-e" in c]
    assert installs and any(re.search(r'\.\[[^\]]*\bdistributed\b', c) for c in installs), installs
    assert any("DS_BUILD_OPS=0" in c for c in installs)  # no CUDA ops to compile on the CPU machine
    assert commands[-1] == _readme_test_command() == "python -m pytest -q"
