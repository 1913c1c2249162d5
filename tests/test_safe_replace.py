"""``--exist_ok true`` replaces only an earlier export of this project or an empty folder; never ``.``, ``..``,
the home folder or ``/``, and never a folder of foreign files (issue 17, item 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from st_qwen3emb import safe_replace
from st_qwen3emb.cli.export import main as export_main
from st_qwen3emb.safe_replace import MARKER, ReplaceRefused, check_replaceable, replace_refusal, write_marker


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A user's project folder, the current folder, inside a parent holding other work."""
    root = tmp_path / "parent"
    proj = root / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "src" / "main.py").write_text("print('mine')\n")
    (proj / "data.csv").write_text("a,b\n1,2\n")
    (root / "other.txt").write_text("not yours either")
    monkeypatch.chdir(proj)
    return proj


@pytest.mark.parametrize(("output_dir", "reason"), [(".", "current folder"), ("..", "contains the current folder")])
def test_export_refuses_current_and_parent_folder(tiny_qwen_st, project, capsys, output_dir, reason):
    before = _snapshot(project.parent)
    rc = export_main(["--model", str(tiny_qwen_st), "--output_dir", output_dir, "--exist_ok", "true"])
    err = capsys.readouterr().err
    assert rc == 2
    assert reason in err and "Nothing was deleted" in err and len(err.strip().splitlines()) == 1
    assert _snapshot(project.parent) == before


def test_export_refuses_a_folder_of_foreign_files(tiny_qwen_st, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "notes").mkdir(parents=True)
    (out / "notes" / "todo.md").write_text("mine")
    rc = export_main(["--model", str(tiny_qwen_st), "--output_dir", str(out), "--exist_ok", "true"])
    err = capsys.readouterr().err
    assert rc == 2 and "did not write" in err and "notes/todo.md" in err
    assert _snapshot(out) == {"notes/todo.md": b"mine"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no scratch folder left behind


def test_export_replaces_a_previous_export_but_not_files_added_to_it(tiny_qwen_st, tmp_path, capsys):
    out = tmp_path / "out"
    assert export_main(["--model", str(tiny_qwen_st), "--output_dir", str(out)]) == 0
    assert (out / MARKER).is_file() and (out / "model.safetensors").is_file()
    rc = export_main(["--model", str(tiny_qwen_st), "--output_dir", str(out)])
    assert rc == 2 and "pass --exist_ok true" in capsys.readouterr().err
    (out / "stale.txt").write_text("x")  # listed by nobody: a user's file in the export
    rc = export_main(["--model", str(tiny_qwen_st), "--output_dir", str(out), "--exist_ok", "true"])
    assert rc == 2 and "stale.txt" in capsys.readouterr().err and (out / "stale.txt").is_file()
    (out / "stale.txt").unlink()
    (out / "README.md").write_text("a card rewritten by st-qwen3emb card")  # the card may be rewritten
    assert export_main(["--model", str(tiny_qwen_st), "--output_dir", str(out), "--exist_ok", "true"]) == 0
    assert (out / "README.md").read_text() != "a card rewritten by st-qwen3emb card"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_empty_folder_is_replaced(tiny_qwen_st, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert export_main(["--model", str(tiny_qwen_st), "--output_dir", str(out), "--exist_ok", "true"]) == 0
    assert (out / "modules.json").is_file()


def test_reranker_export_follows_the_same_rule(tiny_qwen_causal, tmp_path):
    from st_qwen3emb.reranker.export import export_reranker

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ReplaceRefused, match="did not write"):
        export_reranker(tiny_qwen_causal, out, exist_ok=True)
    assert (out / "keep.txt").read_text() == "mine"


def test_protected_folders_are_refused_even_when_empty_or_marked(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    assert "home folder" in replace_refusal(home, kind="export")
    assert "root" in replace_refusal("/", kind="export")
    write_marker(tmp_path, kind="export")
    assert "current folder" in replace_refusal(".", kind="export")
    with pytest.raises(ReplaceRefused, match="contains the current folder"):
        check_replaceable("..", kind="export", exist_ok=True)


def test_marker_kind_and_file_are_checked(tmp_path):
    out = tmp_path / "mined"
    out.mkdir()
    (out / "train.jsonl").write_text("{}\n")
    write_marker(out, kind="mine")
    assert replace_refusal(out, kind="mine") is None
    assert "'mine' output" in replace_refusal(out, kind="export")
    (out / MARKER).write_text(json.dumps({"kind": "mine", "files": ["train.jsonl"]}))  # not written by us
    assert "did not write" in replace_refusal(out, kind="mine")
    (out / MARKER).unlink()
    (out / MARKER).symlink_to(tmp_path / "elsewhere.json")
    assert "did not write" in replace_refusal(out, kind="mine")
    file = tmp_path / "a_file"
    file.write_text("x")
    assert "is a file" in replace_refusal(file, kind="mine")


def test_replace_folder_rechecks_before_the_swap(tmp_path):
    target, built, scratch = tmp_path / "target", tmp_path / "built", tmp_path / "scratch"
    for folder in (target, built, scratch):
        folder.mkdir()
    (built / "new.txt").write_text("new")
    (target / "theirs.txt").write_text("theirs")  # appeared after the early check
    with pytest.raises(ReplaceRefused):
        safe_replace.replace_folder(built, target, kind="export", exist_ok=True, scratch=scratch)
    assert (target / "theirs.txt").read_text() == "theirs" and (built / "new.txt").is_file()


# --- files written by evaluation -------------------------------------------------------------------------
def test_eval_outputs_overwrite_only_earlier_summaries(tmp_path, monkeypatch, capsys):
    from st_qwen3emb.cli.eval import main as eval_main
    from st_qwen3emb.evaluation.summary import write_summary

    monkeypatch.chdir(tmp_path)
    Path("data.csv").write_text("a,b\n1,2\n")
    # refused before any model loads (the model does not even exist)
    rc = eval_main(["sts", "--model", "no/such-model", "--dataset", "x.tsv", "--output", "data.csv"])
    err = capsys.readouterr().err
    assert rc == 2 and "data.csv" in err and "did not write it" in err
    assert Path("data.csv").read_text() == "a,b\n1,2\n"
    Path("chart.png").write_bytes(b"\x89PNG my picture")
    assert eval_main(["sts", "--model", "no/such-model", "--dataset", "x.tsv", "--output", "chart.json"]) == 2
    assert "chart.png" in capsys.readouterr().err and Path("chart.png").read_bytes() == b"\x89PNG my picture"
    assert eval_main(["mteb", "--model", "m", "--tasks", "STSBenchmark", "--summary", "data.csv"]) == 2
    assert Path("data.csv").read_text() == "a,b\n1,2\n"
    with pytest.raises(ReplaceRefused, match="data.csv"):
        write_summary([], "data.csv")
    write_summary([], "summary.json")
    write_summary([], "summary.json")  # an earlier summary is replaced


def test_export_of_a_folder_that_is_not_a_model_is_one_line_exit_2(tmp_path, capsys):
    """A run folder (users try it) or a source folder: the same one-line error sft and eval give, not a traceback."""
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "main.py").write_text("print('hi')\n")
    for flag in ("--model", "--adapters"):
        capsys.readouterr()
        assert export_main([flag, str(folder), "--output_dir", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert "is not a model folder" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()
