"""The top-level command line dispatches without importing heavy libraries."""

from __future__ import annotations

import subprocess
import sys

from st_qwen3emb.cli import COMMANDS, main


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_suggests_close_match(capsys):
    assert main(["sfft"]) == 2
    assert "Did you mean 'sft'" in capsys.readouterr().err


def test_help_does_not_import_torch():
    code = "import sys; from st_qwen3emb.cli import main; main(['--help']); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False")
