"""Mining in chunks (``st_qwen3emb.mining.streaming``): the same rows as the in-memory path, never more than
``chunk_size`` corpus texts embedded at once, and an interrupted run resumes from its saved state."""

from __future__ import annotations

import json

import pytest
from test_mining import DOCS, POSITIVES

from st_qwen3emb.cli.mine import main as mine_main
from st_qwen3emb.mining import corpus_file, mine, mine_corpus, state_folder, write_mined
from st_qwen3emb.mining.streaming import MiningState, candidate_groups


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    from st_qwen3emb import load_model

    return load_model(str(minilm_dir))


@pytest.fixture
def corpus_txt(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(DOCS + DOCS[:3]) + "\n")  # duplicates, as real corpora have
    return path


def _by_pair(rows):
    return {(r["query"], r["positive"]): (r["negatives"], [round(s, 5) for s in r["scores"]]) for r in rows}


class CountingEncoder:
    """Wraps ``model.encode_document``: records how many texts each call embeds, and can raise Ctrl-C on call n."""

    def __init__(self, model, monkeypatch, interrupt_on: int | None = None) -> None:
        self.sizes: list[int] = []
        self.original = model.encode_document
        self.interrupt_on = interrupt_on
        monkeypatch.setattr(model, "encode_document", self)

    def __call__(self, texts, **kwargs):
        self.sizes.append(len(texts))
        if self.interrupt_on is not None and len(self.sizes) == self.interrupt_on:
            raise KeyboardInterrupt
        return self.original(texts, **kwargs)


@pytest.mark.parametrize(("chunk_size", "guard"), [(5, {}), (8, {}), (5, {"absolute_margin": 0.0})])
def test_chunked_rows_equal_the_in_memory_rows(minilm, corpus_txt, monkeypatch, chunk_size, guard):
    whole, _ = mine(minilm, POSITIVES, list(corpus_file(corpus_txt)), num_negatives=3, verbose=False, **guard)
    encoder = CountingEncoder(minilm, monkeypatch)
    chunked, summary = mine_corpus(
        minilm, POSITIVES, corpus_file(corpus_txt), chunk_size=chunk_size, num_negatives=3, verbose=False, **guard
    )
    assert _by_pair(chunked) == _by_pair(whole)
    assert summary.rows == 4 and summary.corpus == len(DOCS)
    assert len(encoder.sizes) > 3  # several stage-1 chunks, then the groups
    if chunk_size >= 7:  # each query keeps k = range_max 5 + 2 positives candidates: groups then fit in a chunk
        assert max(encoder.sizes) <= chunk_size


def test_a_corpus_within_one_chunk_takes_the_in_memory_path(minilm, corpus_txt, monkeypatch):
    encoder = CountingEncoder(minilm, monkeypatch)
    mine_corpus(minilm, POSITIVES, corpus_file(corpus_txt), chunk_size=100, num_negatives=3, verbose=False)
    assert len(encoder.sizes) == 1  # one upstream call embeds the whole (small) corpus once


def test_candidate_groups_stay_within_the_limit():
    import numpy as np

    positions = np.array([[0, 1, 2], [1, 2, 3], [7, 8, 9], [9, -1, -1], [4, 5, 6]])
    assert candidate_groups(positions, 4) == [[0, 1], [2, 3], [4]]
    assert candidate_groups(positions, 2) == [[0], [1], [2], [3], [4]]  # a query alone may exceed the limit


def test_an_interrupted_run_resumes_from_its_saved_chunks(minilm, corpus_txt, tmp_path, monkeypatch, capsys):
    reference, _ = write_mined(minilm, POSITIVES, corpus_file(corpus_txt), tmp_path / "ref.jsonl", chunk_size=5,
                               num_negatives=3, verbose=False)  # fmt: skip
    out = tmp_path / "mined.jsonl"
    encoder = CountingEncoder(minilm, monkeypatch, interrupt_on=3)  # Ctrl-C while embedding the third chunk
    with pytest.raises(KeyboardInterrupt):
        write_mined(minilm, POSITIVES, corpus_file(corpus_txt), out, chunk_size=5, num_negatives=3)
    assert not out.exists() and state_folder(out).is_dir()
    assert "the same command resumes" in capsys.readouterr().out
    searched_before = sum(encoder.sizes[:2])
    encoder.interrupt_on, encoder.sizes = None, []
    write_mined(minilm, POSITIVES, corpus_file(corpus_txt), out, chunk_size=5, num_negatives=3)
    assert "resuming from the saved state: 10 documents already searched" in capsys.readouterr().out
    assert searched_before > 0 and out.read_bytes() == reference.read_bytes()
    assert not state_folder(out).exists()  # removed once the output is written


def test_a_state_of_another_run_starts_over_and_a_foreign_folder_is_refused(tmp_path, capsys):
    folder = tmp_path / ".x.jsonl.mining-state"
    MiningState(folder, {"model": "a"}).save_stage1(consumed=5)
    assert MiningState(folder, {"model": "a"}, verbose=False).load_stage1() is not None
    assert MiningState(folder, {"model": "b"}).load_stage1() is None
    assert "holds the state of a different mining run" in capsys.readouterr().out
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not a mining state"):
        MiningState(foreign, {"model": "a"})
    assert (foreign / "notes.txt").read_text() == "keep"


def test_cli_chunked_corpus_and_a_bad_corpus_row(minilm_dir, corpus_txt, tmp_path, capsys):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"query": q, "response": d}) + "\n" for q, ds in POSITIVES.items() for d in ds))
    out = tmp_path / "mined.jsonl"
    argv = ["--model", str(minilm_dir), "--dataset", str(pairs), "--output", str(out), "--num_negatives", "3"]
    assert mine_main([*argv, "--corpus", str(corpus_txt), "--chunk_size", "5"]) == 0
    assert "rows written:               4" in capsys.readouterr().out and len(out.read_text().splitlines()) == 4
    bad = tmp_path / "passages.jsonl"
    bad.write_text('{"text": "fine"}\n{"title": [], "body": "no text"}\n')
    assert mine_main([*argv, "--corpus", str(bad), "--overwrite", "--model", str(tmp_path / "not-loaded")]) == 2
    err = capsys.readouterr().err
    assert f"{bad}, line 2" in err and "not-loaded" not in err and "no title or text field" in err
