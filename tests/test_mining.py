"""``st-qwen3emb mine``: known positives never come back as negatives, the reranker filter drops what it scores
high, the three output layouts load for training, and bad flags fail before any model loads."""

from __future__ import annotations

import json

import pytest
import torch

from st_qwen3emb.cli.mine import main as mine_main
from st_qwen3emb.mining import corpus_file, format_row, mine, mine_corpus, query_positives

DOCS = [
    "Cats are small domestic felines that like to sleep.",
    "A kitten is a young cat.",
    "Dogs are loyal animals that bark.",
    "Puppies are young dogs.",
    "The stock market fell sharply on Monday.",
    "Interest rates were raised by the central bank.",
    "Paris is the capital of France.",
    "Berlin is the capital of Germany.",
    "The sun is a star at the centre of the solar system.",
    "The moon orbits the earth.",
    "Pasta is cooked in boiling salted water.",
    "Bread is baked in an oven.",
]
POSITIVES = {
    "what is a cat": [DOCS[0], DOCS[1]],
    "tell me about dogs": [DOCS[2]],
    "capital city of france": [DOCS[6]],
}


class StubReranker:
    """A CrossEncoder stand-in: scores 10 for the pairs in ``high``, 0 for every other pair."""

    def __init__(self, high: set[tuple[str, str]]) -> None:
        self.high = high
        self.calls = 0

    def predict(self, pairs, batch_size=32, convert_to_tensor=False, pool=None, **_):
        self.calls += 1
        scores = [10.0 if (q, d) in self.high else 0.0 for q, d in pairs]
        return torch.tensor(scores) if convert_to_tensor else scores


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    from st_qwen3emb import load_model

    return load_model(str(minilm_dir))


def test_every_positive_of_a_query_is_excluded_not_only_the_rows_own(minilm):
    rows, summary = mine(minilm, POSITIVES, DOCS, num_negatives=9, verbose=False)
    assert {(r["query"], r["positive"]) for r in rows} == {(q, d) for q, ds in POSITIVES.items() for d in ds}
    for row in rows:
        assert not set(row["negatives"]) & set(POSITIVES[row["query"]]), row
        assert len(row["scores"]) == 1 + len(row["negatives"])
    assert summary.rows == 4 and summary.queries == 3 and summary.corpus == len(DOCS)


def test_reranker_filter_drops_the_candidates_it_scores_above_the_threshold(minilm):
    # "A kitten..." is unlabelled for the dog query but the stub calls it relevant: it must not be a negative.
    false_negatives = {("tell me about dogs", DOCS[3]), ("capital city of france", DOCS[7])}
    stub = StubReranker(false_negatives)
    unfiltered, _ = mine(minilm, POSITIVES, DOCS, num_negatives=5, range_max=11, verbose=False)
    assert any(DOCS[3] in r["negatives"] for r in unfiltered if r["query"] == "tell me about dogs")
    rows, summary = mine(minilm, POSITIVES, DOCS, num_negatives=5, range_max=11, reranker=stub, max_score=5.0, verbose=False)
    assert stub.calls > 0
    for row in rows:
        assert all((row["query"], neg) not in false_negatives for neg in row["negatives"])
        assert all(score <= 5.0 for score in row["scores"][1:])  # the reranker's scores are written
    assert summary.removed.get("max_score", 0) >= 2
    with pytest.raises(ValueError, match="threshold"):
        mine(minilm, POSITIVES, DOCS, reranker=stub, verbose=False)


@pytest.mark.parametrize("layout", ["swift4", "swift3", "st"])
def test_cli_layouts_load_for_infonce_and_distillation(layout, minilm_dir, tmp_path, capsys):
    from st_qwen3emb.data import load_dataset

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"query": q, "response": d}) + "\n" for q, ds in POSITIVES.items() for d in ds))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(DOCS))
    out = tmp_path / "mined.jsonl"
    argv = ["--model", str(minilm_dir), "--dataset", str(pairs), "--corpus", str(corpus), "--output", str(out),
            "--num_negatives", "3", "--format", layout, "--scores"]  # fmt: skip
    assert mine_main(argv) == 0
    printed = capsys.readouterr().out
    assert "rows written:               4" in printed
    assert f"DISTILL_TEACHER_TEMPERATURE=0.05 st-qwen3emb sft --model {minilm_dir} --dataset {out} --loss_type distill_kl" in printed
    ds = load_dataset(str(out), loss_type="infonce")
    assert len(ds) == 4 and ds.column_names[:5] == ["anchor", "positive", "negative_1", "negative_2", "negative_3"]
    assert len(load_dataset(str(out), loss_type="distill_kl")["label"][0]) == 4
    for row in ds:
        assert not {row[f"negative_{i}"] for i in (1, 2, 3)} & set(POSITIVES[row["anchor"]])
    import os
    import stat

    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask  # like any new file, not mkstemp's 0600
    before = out.read_bytes()
    assert mine_main(argv) == 2  # no silent overwrite
    assert "exists; pass --overwrite" in capsys.readouterr().err and out.read_bytes() == before
    assert mine_main([*argv, "--overwrite"]) == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--num_negatives", "0"], "--num_negatives must be >= 1"),
        (["--reranker", "somewhere"], "--reranker needs a threshold"),
        (["--range_min", "5", "--range_max", "3"], "--range_max (3) must be larger"),
    ],
)
def test_bad_flags_exit_2_before_loading_a_model(extra, message, tmp_path, capsys):
    argv = ["--model", str(tmp_path / "no-model"), "--dataset", str(tmp_path / "x.jsonl"), "--output",
            str(tmp_path / "o.jsonl"), *extra]  # fmt: skip
    assert mine_main(argv) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "o.jsonl").exists()


def test_format_row_layouts():
    row = {"query": "q", "positive": "p", "negatives": ["n1", "n2"], "scores": [0.9, 0.5, 0.1]}
    assert format_row(row, "swift3", with_scores=False) == {"query": "q", "response": "p", "rejected_response": ["n1", "n2"]}
    assert format_row(row, "st", with_scores=True)["negative_2"] == "n2"
    swift4 = format_row(row, "swift4", with_scores=True)
    assert swift4["negative_messages"][1] == [{"role": "user", "content": "n2"}] and swift4["scores"] == [0.9, 0.5, 0.1]


# --- Cranfield: the whole output ---------------------------------------------------------------------------
CRANFIELD = "../shared/data/retrieval/cranfield"


@pytest.mark.slow
def test_no_cranfield_qrels_positive_is_ever_mined_as_a_negative(minilm_dir, tmp_path):
    """All 225 queries, 20 negatives each, every qrels positive (score > 0) checked by document id; the corpus is
    mined in chunks of 700 (``mining.streaming``), so both stages are covered."""
    from conftest import RETRIEVAL_DIR, require_shared

    from st_qwen3emb import load_model
    from st_qwen3emb.data import read_records
    from st_qwen3emb.data.retrieval import load_corpus, read_beir

    folder = require_shared(RETRIEVAL_DIR / "cranfield")
    model = load_model(str(minilm_dir), max_seq_length=32)  # short inputs keep CI cheap; the exclusion is the point
    positives = query_positives(read_records(f"{folder}:test"))
    corpus = load_corpus(folder)
    rows, _ = mine_corpus(model, positives, corpus_file(folder), chunk_size=700, num_negatives=20, verbose=False)
    ids_of: dict[str, set[str]] = {}
    for doc_id, text in corpus.items():
        ids_of.setdefault(text, set()).add(doc_id)
    beir = read_beir(folder, "test")
    qid_of = {text: qid for qid, text in beir.queries.items()}
    qrels = {qid: {doc_id for doc_id, score in docs.items() if score > 0} for qid, docs in beir.qrels.items()}
    assert len(rows) > 1500
    checked = 0
    for row in rows:
        relevant = qrels[qid_of[row["query"]]]
        for negative in row["negatives"]:
            assert not ids_of[negative] & relevant, (row["query"], negative[:60])
            checked += 1
    assert checked >= 20 * len(rows) * 0.99
