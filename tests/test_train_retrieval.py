"""``training_scripts/train_retrieval.py`` end to end on a small BEIR folder, and the Cranfield split rule of
``benchmarks/loss_choice.py``."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

DOCS = {
    "d1": "Cats are small domestic felines that like to sleep.", "d2": "A kitten is a young cat.",
    "d3": "Dogs are loyal animals that bark.", "d4": "Puppies are young dogs.",
    "d5": "The stock market fell sharply on Monday.", "d6": "Interest rates were raised by the central bank.",
    "d7": "Paris is the capital of France.", "d8": "Berlin is the capital of Germany.",
    "d9": "The moon orbits the earth.", "d10": "Bread is baked in an oven.",
}  # fmt: skip
QUERIES = {"1": "what is a cat", "2": "young dog", "3": "capital of france", "4": "capital of germany",
           "5": "stock prices", "6": "central bank rates"}  # fmt: skip
QRELS = {"train": [("1", "d1", 2), ("1", "d2", 1), ("3", "d7", 2), ("5", "d5", 1)],
         "test": [("2", "d4", 2), ("4", "d8", 2), ("6", "d6", 1)]}  # fmt: skip


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def beir(tmp_path) -> Path:
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n" for k, v in DOCS.items()))
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in QUERIES.items()))
    for split, rows in QRELS.items():
        (folder / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in rows))
    return folder


@pytest.mark.slow
def test_train_retrieval_runs_the_whole_recipe_and_prints_the_table(beir, minilm_dir, tmp_path, capsys):
    script = _module(REPO / "training_scripts" / "train_retrieval.py", "train_retrieval")
    work = tmp_path / "work"
    argv = ["--folder", str(beir), "--model", str(minilm_dir), "--work_dir", str(work), "--num_negatives", "2",
            "--max_steps", "2", "--per_device_train_batch_size", "2", "--logging_steps", "1"]  # fmt: skip
    assert script.main(argv) == 0
    out = capsys.readouterr().out
    assert "| nDCG@10 |" in out and "| MRR@10 |" in out and "| Recall@100 |" in out
    results = json.loads((work / "results.json").read_text())
    assert set(results["base"]) == {"nDCG@10", "MRR@10", "Recall@100"} and 0 <= results["fine_tuned"]["nDCG@10"] <= 1
    assert (work / "model" / "modules.json").is_file()
    mined = [json.loads(line) for line in (work / "mined.jsonl").read_text().splitlines()]
    assert len(mined) == 4 and all(len(row["scores"]) == 3 for row in mined)


def test_train_retrieval_refuses_a_folder_without_the_splits(tmp_path, capsys):
    script = _module(REPO / "training_scripts" / "train_retrieval.py", "train_retrieval")
    assert script.main(["--folder", str(tmp_path)]) == 2
    assert "qrels/train.tsv: no such file" in capsys.readouterr().err


def test_cranfield_split_rule_is_the_recorded_one():
    bench = _module(REPO / "benchmarks" / "loss_choice.py", "loss_choice")
    record = json.loads((REPO / "benchmarks" / "data" / "cranfield_split.json").read_text())
    assert all(bench.split_rule(q) == "train" for q in record["train"])
    assert all(bench.split_rule(q) == "test" for q in record["test"])
    assert len(record["train"]) == 113 and len(record["test"]) == 112 and not set(record["train"]) & set(record["test"])
