"""Data layer: spec grammar, every file layout, STS-B subsets, the hard-negative policy and every error path.

Fixture files are written into tmp_path by the tests; the real STS-B copy in ../shared is only read (and the
tests that need it skip without it).
"""

from __future__ import annotations

import csv
import json
import logging
import random
from pathlib import Path

import pytest

from st_qwen3emb.data import (
    DatasetValidationError,
    Record,
    default_sts_sample_path,
    load_dataset,
    parse_dataset_spec,
    read_records,
    sample_records,
)
from st_qwen3emb.data.negatives import fit_negatives


def write_jsonl(path: Path, rows: list, blank_after: int | None = None) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    if blank_after is not None:
        lines.insert(blank_after, "")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_tsv(path: Path, header: list[str], rows: list[list]) -> Path:
    text = "\t".join(header) + "\n" + "".join("\t".join(str(v) for v in row) + "\n" for row in rows)
    path.write_text(text, encoding="utf-8")
    return path


def error_of(spec, **kwargs) -> str:
    kwargs.setdefault("loss_type", "cosine_similarity")
    with pytest.raises(DatasetValidationError) as info:
        load_dataset(spec, **kwargs)
    return str(info.value)


# --- spec grammar --------------------------------------------------------------------------------


def test_spec_id_subset_sample():
    spec = parse_dataset_spec("sentence-transformers/stsb:positive#500")
    assert (spec.name, spec.subsets, spec.sample, spec.hub) == ("sentence-transformers/stsb", ("positive",), 500, None)
    assert str(spec) == "sentence-transformers/stsb:positive#500"


def test_spec_hub_prefix_and_several_subsets():
    spec = parse_dataset_spec("hf::org/name:a/b")
    assert (spec.name, spec.subsets, spec.sample, spec.hub) == ("org/name", ("a", "b"), None, "hf")
    assert parse_dataset_spec("org/name#3").sample == 3
    assert parse_dataset_spec("org/name").subsets == ()


def test_spec_existing_path_wins_over_grammar(tmp_path):
    odd = write_jsonl(tmp_path / "odd:name#2.jsonl", [{"query": "a", "response": "b"}])
    spec = parse_dataset_spec(str(odd))
    assert (spec.name, spec.subsets, spec.sample) == (str(odd), (), None)
    sampled = parse_dataset_spec(f"{tmp_path / 'x.jsonl'}#7")
    assert sampled.sample == 7 and sampled.name == str(tmp_path / "x.jsonl")


@pytest.mark.parametrize("bad", ["", "org/name#abc", "org/name#0", "org/name:", ":sub"])
def test_spec_errors(bad):
    with pytest.raises(ValueError):
        parse_dataset_spec(bad)


# --- formats -------------------------------------------------------------------------------------


def test_swift3_rows_with_system_and_negatives(tmp_path):
    path = write_jsonl(
        tmp_path / "v3.jsonl",
        [
            {"query": "q1", "response": "p1", "rejected_response": ["n1", "n2"], "label": 1},
            {"query": "q2", "response": "p2", "rejected_response": "n3", "system": "Instruct: find"},
        ],
    )
    recs = list(read_records(str(path)))
    assert [(r.anchor, r.positives, r.negatives, r.label) for r in recs] == [
        ("q1", ["p1"], ["n1", "n2"], 1.0),
        ("Instruct: find q2", ["p2"], ["n3"], None),
    ]
    assert [r.row for r in recs] == [1, 2] and recs[0].source == str(path)
    ds = load_dataset(str(path), loss_type="infonce")
    assert ds.column_names == ["anchor", "positive", "negative_1", "negative_2"]
    assert ds[1]["negative_1"] == ds[1]["negative_2"] == "n3"  # padded from the row's own negatives


def test_swift4_messages_system_prepended_and_all_positives_kept(tmp_path):
    row = {
        "messages": [{"role": "system", "content": "Be precise."}, {"role": "user", "content": "anchor text"}],
        "positive_messages": [
            [{"role": "user", "content": "pos one"}],
            [{"role": "system", "content": "Doc:"}, {"role": "assistant", "content": "pos two"}],
        ],
        "negative_messages": [[{"role": "user", "content": "neg one"}], [{"role": "user", "content": "neg two"}]],
        "label": 0.8,
    }
    top_level_system = {"system": "S", "messages": [{"role": "user", "content": "a2"}],
                        "positive_messages": [[{"role": "user", "content": "p2"}]], "label": 0.1}
    path = write_jsonl(tmp_path / "v4.jsonl", [row, top_level_system])
    first, second = read_records(str(path))
    assert first.anchor == "Be precise. anchor text"  # system + " " + content, as swift's qwen3_emb template
    assert first.positives == ["pos one", "Doc: pos two"]
    assert first.negatives == ["neg one", "neg two"] and first.label == pytest.approx(0.8)
    assert second.anchor == "S a2"
    ds = load_dataset(str(path), loss_type="cosine_similarity")
    assert ds.column_names == ["anchor", "positive", "label"]
    assert ds[0]["positive"] == "pos one"  # only the first positive trains embeddings, as in swift
    assert ds["label"] == pytest.approx([0.8, 0.1])


def test_sentence_transformers_columns_csv(tmp_path):
    path = tmp_path / "st.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["anchor", "positive", "negative_1", "negative_2"])
        writer.writerow(["a, with comma", 'p "quoted"', "n1", "n2"])
        writer.writerow(["b", "q", "m1", "m2"])
    ds = load_dataset(str(path), loss_type="infonce")
    assert ds.column_names == ["anchor", "positive", "negative_1", "negative_2"]
    assert ds[0] == {"anchor": "a, with comma", "positive": 'p "quoted"', "negative_1": "n1", "negative_2": "n2"}


def test_sentence_pair_csv_with_label(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("sentence1,sentence2,label\nx,y,1\nu,v,0\n", encoding="utf-8")
    ds = load_dataset(str(path), loss_type="contrastive")
    assert ds["label"] == [1.0, 0.0]


def test_stsb_tsv_layout_scaled_and_quotes_kept(tmp_path):
    path = write_tsv(tmp_path / "sts.tsv", ["sentence1", "sentence2", "score"],
                     [['A "quoted" word.', "Another one.", "5.000"], ["x", "y", "2.500"], ["u", "v", "0"]])
    ds = load_dataset(str(path), loss_type="cosine_similarity")
    assert ds["label"] == pytest.approx([1.0, 0.5, 0.0])
    assert ds[0]["anchor"] == 'A "quoted" word.'
    positive = load_dataset(f"{path}:positive", loss_type="infonce")
    assert positive["anchor"] == ['A "quoted" word.']


def test_tsv_without_stsb_header_is_not_scaled(tmp_path):
    path = write_tsv(tmp_path / "pairs.tsv", ["sentence1", "sentence2", "label"], [["x", "y", "0.4"]])
    assert load_dataset(str(path), loss_type="cosine_similarity")["label"] == pytest.approx([0.4])


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"query": ["q1", "q2"], "response": ["r1", "r2"], "label": [0.25, 0.75]}), path)
    ds = load_dataset(str(path), loss_type="cosent")
    assert ds["anchor"] == ["q1", "q2"] and ds["label"] == pytest.approx([0.25, 0.75])


def test_json_array_and_json_lines_under_json_name(tmp_path):
    array = tmp_path / "rows.json"
    array.write_text(json.dumps([{"anchor": "a", "positive": "p"}, {"anchor": "b", "positive": "q"}]))
    assert load_dataset(str(array), loss_type="infonce")["positive"] == ["p", "q"]
    lines = write_jsonl(tmp_path / "lines.json", [{"anchor": "a", "positive": "p"}, {"anchor": "b", "positive": "q"}])
    assert load_dataset(str(lines), loss_type="infonce")["anchor"] == ["a", "b"]


def test_list_of_specs_concatenated_and_sampled(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [{"query": f"a{i}", "response": f"p{i}", "label": 1} for i in range(10)])
    b = write_jsonl(tmp_path / "b.jsonl", [{"query": f"b{i}", "response": f"q{i}", "label": 0} for i in range(4)])
    ds = load_dataset([f"{a}#3", str(b)], loss_type="contrastive", seed=1)
    assert len(ds) == 7 and ds["anchor"][3:] == ["b0", "b1", "b2", "b3"]
    assert load_dataset([f"{a}#3"], loss_type="contrastive", seed=1)["anchor"] == ds["anchor"][:3]


def test_sampling_follows_swift():
    recs = [Record(str(i), ["p"], [], None, "s", i + 1) for i in range(10)]
    small = [r.anchor for r in sample_records(recs, 4, seed=0)]
    assert len(set(small)) == 4 and small == [r.anchor for r in sample_records(recs, 4, seed=0)]
    assert small != [r.anchor for r in sample_records(recs, 4, seed=1)]
    big = [r.anchor for r in sample_records(recs, 23, seed=0)]
    # two full passes in order, then 3 distinct rows: no row more than once beyond the full passes
    assert big[:20] == [str(i) for i in range(10)] * 2 and len(set(big[20:])) == 3


def test_records_fields_name_the_user_field(tmp_path):
    path = write_jsonl(tmp_path / "r.jsonl", [{"sentence1": "a", "sentence2": "b", "score": 0.5}])
    (rec,) = read_records(str(path))
    assert rec.where("positive") == f"{path}, line 1, field 'sentence2'"
    assert rec.where("label") == f"{path}, line 1, field 'score'"


# --- registered STS-B subsets ---------------------------------------------------------------------


def _stsb_scores(path: Path) -> list[float]:
    with path.open(encoding="utf-8") as handle:
        next(handle)
        return [float(line.rstrip("\n").split("\t")[2]) for line in handle if line.strip()]


def test_local_stsb_default_and_positive(stsb_dir):
    train = stsb_dir / "train.tsv"
    scores = _stsb_scores(train)
    default = load_dataset(str(train), loss_type="cosine_similarity")
    assert len(default) == len(scores) == 5749
    assert default["label"] == pytest.approx([s / 5 for s in scores])
    positive = load_dataset(f"{train}:positive", loss_type="infonce")
    assert len(positive) == sum(s / 5 >= 0.75 for s in scores)
    assert positive.column_names == ["anchor", "positive"]
    with_labels = list(read_records(f"{train}:positive"))
    assert min(r.label for r in with_labels) >= 0.75


def test_hub_stsb_subsets_use_the_hub_scale(monkeypatch):
    import datasets

    hub_rows = {"sentence1": ["a", "b", "c"], "sentence2": ["x", "y", "z"], "score": [0.9, 0.75, 0.5]}
    calls = []

    def fake_load(name, config=None, split=None):
        calls.append((name, config, split))
        return datasets.Dataset.from_dict(hub_rows)

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    assert load_dataset("sentence-transformers/stsb", loss_type="cosine_similarity")["label"] == pytest.approx(
        [0.9, 0.75, 0.5]
    )
    assert load_dataset("sentence-transformers/stsb:positive", loss_type="infonce")["anchor"] == ["a", "b"]
    assert calls[0] == ("sentence-transformers/stsb", None, "train")
    with pytest.raises(DatasetValidationError, match="unknown subset 'nope'.*default, positive"):
        load_dataset("sentence-transformers/stsb:nope", loss_type="infonce")


def test_hub_unreachable_says_to_pass_a_local_file(monkeypatch):
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    message = error_of("some-org/some-dataset")
    assert "some-org/some-dataset" in message and "local file" in message


def test_packaged_sts_sample_is_valid_and_our_own():
    path = default_sts_sample_path()
    scores = _stsb_scores(path)
    assert 55 <= len(scores) <= 80 and all(0 <= s <= 5 for s in scores)
    ds = load_dataset(str(path), loss_type="cosine_similarity")
    assert len(ds) == len(scores) and 0 < len(load_dataset(f"{path}:positive", loss_type="infonce")) < len(ds)
    from conftest import STSB_DIR

    if STSB_DIR.exists():  # written for this repository: no sentence of it comes from STS-B
        shared = set()
        for split in ("train", "validation", "test"):
            for line in (STSB_DIR / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]:
                shared.update(line.split("\t")[:2])
        assert not shared & (set(ds["anchor"]) | set(ds["positive"]))


# --- retrieval folders -----------------------------------------------------------------------------


def test_retrieval_folder(tmp_path):
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    write_jsonl(folder / "corpus.jsonl", [{"_id": f"d{i}", "title": f"T{i}", "text": f"text {i}"} for i in range(5)])
    write_jsonl(folder / "queries.jsonl", [{"_id": "q1", "text": "first"}, {"_id": "q2", "text": "second"},
                                           {"_id": "q3", "text": "unjudged"}])
    write_tsv(folder / "qrels" / "test.tsv", ["query-id", "corpus-id", "score"],
              [["q1", "d0", 1], ["q1", "d1", 2], ["q1", "d2", 0], ["q2", "d3", 1]])
    write_jsonl(folder / "candidates.jsonl", [{"query_id": "q1", "candidates": ["d0", "d1", "d2", "d4"]},
                                              {"query_id": "q2", "candidates": ["d3", "d4"]}])
    first, second = read_records(f"{folder}:test")
    assert first.anchor == "first" and first.positives == ["T1 text 1", "T0 text 0"]
    assert first.negatives == ["T2 text 2", "T4 text 4"] and second.negatives == ["T4 text 4"]
    ds = load_dataset(str(folder), loss_type="infonce", split="test")
    assert ds.column_names == ["anchor", "positive", "negative_1", "negative_2"]
    assert ds[1]["negative_2"] == "T4 text 4"
    from st_qwen3emb.data.retrieval import load_corpus

    assert load_corpus(folder) == {f"d{i}": f"T{i} text {i}" for i in range(5)}
    with pytest.raises(DatasetValidationError, match=r"train\.tsv.*\['test'\]"):
        load_dataset(str(folder), loss_type="infonce")


# --- hard negatives ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_padding_never_picks_the_positive(seed):
    rng = random.Random(seed)
    records = []
    for i in range(12):
        negatives = [f"n{i}_{j}" for j in range(rng.randint(1, 4))]
        records.append(Record(f"a{i}", [f"p{i}"], negatives, None, "mem", i + 1))
    k = rng.randint(1, 7)
    fitted = fit_negatives(records, k, seed, "mem")
    for rec, negs in zip(records, fitted, strict=True):
        assert len(negs) == k
        assert set(negs) <= set(rec.negatives) and rec.positives[0] not in negs
        assert negs[: min(k, len(rec.negatives))] == rec.negatives[:k]  # own order kept; truncation keeps the first
    unset = fit_negatives(records, None, seed, "mem")
    assert {len(n) for n in unset} == {max(len(r.negatives) for r in records)}
    assert all(set(n) <= set(r.negatives) for r, n in zip(records, unset, strict=True))


def test_hard_negatives_from_env_and_zero(tmp_path, monkeypatch):
    path = write_jsonl(tmp_path / "h.jsonl", [{"query": "q", "response": "p", "rejected_response": ["a", "b", "c"]},
                                              {"query": "r", "response": "s", "rejected_response": ["d"]}])
    monkeypatch.setenv("INFONCE_HARD_NEGATIVES", "2")
    ds = load_dataset(str(path), loss_type="infonce")
    assert ds.column_names == ["anchor", "positive", "negative_1", "negative_2"]
    assert [ds[0]["negative_1"], ds[0]["negative_2"]] == ["a", "b"] and ds[1]["negative_2"] == "d"
    assert load_dataset(str(path), loss_type="infonce", hard_negatives=0).column_names == ["anchor", "positive"]
    assert load_dataset(str(path), loss_type="infonce", hard_negatives=1)["negative_1"] == ["a", "d"]


def test_row_without_negatives_among_rows_with_some(tmp_path, monkeypatch):
    monkeypatch.delenv("INFONCE_HARD_NEGATIVES", raising=False)
    path = write_jsonl(tmp_path / "mixed.jsonl", [{"query": "q", "response": "p", "rejected_response": ["a"]},
                                                  {"query": "r", "response": "s"}])
    message = error_of(str(path), loss_type="infonce")
    assert f"{path}, line 2" in message and "INFONCE_HARD_NEGATIVES" in message
    assert len(load_dataset(str(path), loss_type="infonce", hard_negatives=0)) == 2


def test_pair_losses_ignore_negatives(tmp_path):
    path = write_jsonl(tmp_path / "n.jsonl", [{"query": "q", "response": "p", "rejected_response": ["a"], "label": 1}])
    assert load_dataset(str(path), loss_type="online_contrastive").column_names == ["anchor", "positive", "label"]


def test_zero_label_on_infonce_row_warns_but_keeps_the_row(tmp_path, caplog):
    path = write_jsonl(tmp_path / "z.jsonl", [{"query": "q", "response": "p", "label": 0},
                                              {"query": "r", "response": "s", "label": 1}])
    with caplog.at_level(logging.WARNING):
        ds = load_dataset(str(path), loss_type="infonce")
    assert ds["anchor"] == ["q", "r"] and "label 0" in caplog.text


# --- errors: file, row and field in every message --------------------------------------------------


def test_missing_field(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{"query": "q", "response": "p", "label": 1}, {"text": "x"}])
    message = error_of(str(path))
    assert str(path) in message and "line 2" in message and "'query'" in message


def test_wrong_label_type(tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [{"query": "q", "response": "p", "label": "0.5"}])
    message = error_of(str(path))
    assert f"{path}, line 1, field 'label'" in message and "string" in message
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("sentence1,sentence2,score\na,b,0.5\nc,d,high\n", encoding="utf-8")
    assert f"{csv_path}, line 3, field 'score'" in error_of(str(csv_path))


def test_cosine_label_outside_unit_interval(tmp_path):
    path = write_jsonl(tmp_path / "c.jsonl", [{"query": "q", "response": "p", "label": 0.5},
                                              {"query": "q", "response": "p", "label": 4.2}])
    message = error_of(str(path), loss_type="cosine_similarity")
    assert f"{path}, line 2, field 'label'" in message and "[0, 1]" in message


def test_stsb_layout_score_outside_zero_to_five(tmp_path):
    path = write_tsv(tmp_path / "s.tsv", ["sentence1", "sentence2", "score"], [["a", "b", "3"], ["c", "d", "7.5"]])
    assert f"{path}, line 3, field 'score'" in error_of(str(path))


def test_contrastive_label_not_binary(tmp_path):
    path = write_jsonl(tmp_path / "b.jsonl", [{"anchor": "a", "positive": "p", "label": 0.5}])
    message = error_of(str(path), loss_type="contrastive")
    assert f"{path}, line 1, field 'label'" in message and "0 or 1" in message


def test_empty_text(tmp_path):
    path = write_jsonl(tmp_path / "e.jsonl", [{"query": "q", "response": "  ", "label": 1}])
    assert f"{path}, line 1, field 'response'" in error_of(str(path))
    v4 = write_jsonl(tmp_path / "e4.jsonl", [{"messages": [{"role": "user", "content": ""}],
                                              "positive_messages": [[{"role": "user", "content": "p"}]]}])
    assert f"{v4}, line 1, field 'messages[0].content'" in error_of(str(v4), loss_type="infonce")


def test_invalid_json_row_counts_blank_lines(tmp_path):
    path = write_jsonl(tmp_path / "j.jsonl", [{"query": "q", "response": "p", "label": 1}, '{"query": "q", '],
                       blank_after=1)
    message = error_of(str(path))
    assert f"{path}, line 3" in message and "not valid JSON" in message


def test_infonce_rows_without_positive(tmp_path):
    path = write_jsonl(tmp_path / "np.jsonl", [{"query": "q", "response": "p"}, {"query": "only a query"}])
    message = error_of(str(path), loss_type="infonce")
    assert f"{path}, line 2, field 'response'" in message and "positive" in message


def test_cosine_rows_without_label(tmp_path):
    path = write_jsonl(tmp_path / "nl.jsonl", [{"anchor": "a", "positive": "p"}])
    message = error_of(str(path), loss_type="cosine_similarity")
    assert f"{path}, line 1, field 'label'" in message and "missing" in message


def test_negative_identical_to_positive(tmp_path):
    path = write_jsonl(tmp_path / "same.jsonl", [{"query": "q", "response": "p", "rejected_response": ["x", "p"]}])
    assert f"{path}, line 1, field 'rejected_response'" in error_of(str(path), loss_type="infonce")


def test_many_bad_rows_show_first_five_and_count(tmp_path):
    rows = [{"query": "q", "response": "p", "label": 9} for _ in range(12)]
    path = write_jsonl(tmp_path / "many.jsonl", rows)
    message = error_of(str(path))
    assert "12 invalid rows" in message and "and 7 more" in message
    assert all(f"line {n}, field 'label'" in message for n in range(1, 6)) and "line 6," not in message


def test_bad_file_errors(tmp_path):
    assert "no such file" in error_of(str(tmp_path / "absent.jsonl"))
    odd = tmp_path / "rows.txt"
    odd.write_text("x\n")
    message = error_of(str(odd))
    assert str(odd) in message and "unsupported file extension '.txt'" in message and ".jsonl" in message
    plain = write_jsonl(tmp_path / "plain.jsonl", [{"query": "q", "response": "p", "label": 1}])
    assert "no subsets" in error_of(f"{plain}:positive")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("sentence1,sentence2,label\na,b,1,extra\n", encoding="utf-8")
    assert f"{ragged}, line 2" in error_of(str(ragged))


def test_unknown_loss_type(tmp_path):
    path = write_jsonl(tmp_path / "u.jsonl", [{"query": "q", "response": "p"}])
    with pytest.raises(ValueError, match="loss"):
        load_dataset(str(path), loss_type="no_such_loss")


# --- folders of split files: one spec grammar for training and evaluation ------------------------------


def _positive_rows(path: Path) -> int:
    return sum(score / 5 >= 0.75 for score in _stsb_scores(path))


def test_sts_folder_reads_the_split_file_with_subset_and_sample(stsb_dir):
    positive = load_dataset(f"{stsb_dir}:positive", loss_type="infonce")
    assert len(positive) == _positive_rows(stsb_dir / "train.tsv")
    assert len(load_dataset(str(stsb_dir), loss_type="cosine_similarity")) == len(_stsb_scores(stsb_dir / "train.tsv"))
    test_rows = list(read_records(f"{stsb_dir}:positive", split="test"))
    assert len(test_rows) == _positive_rows(stsb_dir / "test.tsv")
    assert len(load_dataset(f"{stsb_dir}:positive#7", loss_type="infonce")) == 7


def test_sft_takes_only_train_tsv_of_an_sts_folder(stsb_dir, tmp_path):
    from st_qwen3emb.config import parse_args
    from st_qwen3emb.training.sft import _load_data

    config = parse_args(["--model", str(tmp_path), "--dataset", f"{stsb_dir}:positive", "--loss_type", "infonce"])
    train, evaluation = _load_data(config)
    assert len(train) == _positive_rows(stsb_dir / "train.tsv") and evaluation is None


def test_eval_sts_reads_specs_with_the_training_grammar(stsb_dir):
    from st_qwen3emb.evaluation.sts import load_sts_data

    data = load_sts_data(f"{stsb_dir}:positive")
    assert len(data.scores) == _positive_rows(stsb_dir / "test.tsv") and min(data.scores) >= 0.75
    assert data.source == str((stsb_dir / "test.tsv").resolve()) and data.config == "positive"
    assert len(load_sts_data(f"{stsb_dir}#5", split="validation").scores) == 5


def test_folder_of_no_known_layout_lists_the_files_looked_for(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "readme.txt").write_text("hello\n")
    message = error_of(str(folder))
    for name in ("train.tsv", "train.csv", "train.jsonl", "train.json", "train.parquet", "corpus.jsonl", "queries.jsonl"):
        assert name in message
    assert "readme.txt" in message and "\n" not in message


@pytest.mark.parametrize("count", ["0", "-3", "abc", "", "1.5"])
def test_bad_sample_count_is_a_data_error(tmp_path, count):
    path = write_jsonl(tmp_path / "rows.jsonl", [{"query": "q", "response": "p", "label": 1}])
    with pytest.raises(DatasetValidationError, match="is not a row count"):
        parse_dataset_spec(f"{path}#{count}")
    assert "is not a row count" in error_of(f"{path}:positive#{count}")


def test_bad_sample_count_exits_2_in_one_line(tiny_qwen_causal, tmp_path, capsys):
    from st_qwen3emb.cli.sft import main as sft_main

    path = write_jsonl(tmp_path / "rows.jsonl", [{"query": "q", "response": "p", "label": 1}])
    argv = ["--model", str(tiny_qwen_causal), "--dataset", f"{path}#-3", "--loss_type", "infonce",
            "--output_dir", str(tmp_path / "out")]
    assert sft_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "#-3" in err and "row count" in err and len(err.splitlines()) == 1


# --- files that are not UTF-8 text, and long fields -----------------------------------------------------


@pytest.mark.parametrize("ext", [".jsonl", ".json", ".csv", ".tsv"])
def test_invalid_utf8_names_file_line_and_byte_offset(tmp_path, ext):
    path = tmp_path / f"latin1{ext}"
    first = b"sentence1\tsentence2\tscore\n" if ext == ".tsv" else b'{"query": "a", "response": "b"}\n'
    path.write_bytes(first + b'{"query": "caf\xe9"}\n')
    message = error_of(str(path))
    assert str(path) in message and "line 2" in message and f"byte offset {len(first) + 14}" in message
    assert "UTF-8" in message and "\n" not in message


def test_binary_files_are_refused_in_one_line(tmp_path):
    png = tmp_path / "image.jsonl"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    message = error_of(str(png))
    assert str(png) in message and "line 1" in message and "byte offset 0" in message
    nul = tmp_path / "nul.tsv"
    nul.write_bytes(b"sentence1\tsentence2\tscore\nab\x00c\td\t1\n")
    message = error_of(str(nul))
    assert str(nul) in message and "line 2" in message and "byte offset 28" in message and "binary" in message
    parquet = tmp_path / "broken.parquet"
    parquet.write_bytes(b"PAR1 this is no parquet file")
    assert f"{parquet}: not a readable parquet file" in error_of(str(parquet))


@pytest.mark.parametrize("ext", [".tsv", ".csv"])
def test_a_200k_character_field_loads_in_tsv_and_csv(tmp_path, ext):
    long_text = "word " * 40_000  # 200,000 characters, past csv's default 131,072 limit
    sep = "\t" if ext == ".tsv" else ","
    path = tmp_path / f"long{ext}"
    path.write_text(f"anchor{sep}positive\nshort query{sep}{long_text}\n", encoding="utf-8")
    ds = load_dataset(str(path), loss_type="infonce")
    assert ds["positive"] == [long_text]
    jsonl = write_jsonl(tmp_path / "long.jsonl", [{"anchor": "short query", "positive": long_text}])
    assert load_dataset(str(jsonl), loss_type="infonce")["positive"] == ds["positive"]
