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


def test_eval_flags_are_snake_case_and_old_spellings_warn(capsys):
    from st_qwen3emb.cli.eval import build_mteb_parser, build_sts_parser, respell

    sts = build_sts_parser().parse_args(respell(["--model", "m", "--batch_size", "8", "--no_progress"], "eval"))
    assert (sts.batch_size, sts.no_progress) == (8, True)
    assert capsys.readouterr().err == ""
    argv = respell(["--model", "m", "--batch-size=4", "--local-sts", "a.tsv", "--reuse-results"], "eval")
    mteb = build_mteb_parser().parse_args(argv)
    assert (mteb.batch_size, mteb.local_sts, mteb.reuse_results) == (4, ["a.tsv"], True)
    err = capsys.readouterr().err
    assert "--batch-size is deprecated; use --batch_size" in err and "--local-sts is deprecated" in err
    assert "--batch-size" not in build_mteb_parser().format_help()
