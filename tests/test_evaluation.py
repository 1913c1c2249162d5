"""Evaluation: STS correlations, the Qwen3 instruction per task type, local mteb tasks, the summary JSON.

Fast tests use the tiny Qwen3 model and a few rows written here. The ``slow`` tests check real numbers on
../shared data with the packaged all-MiniLM-L6-v2 against independent computations written in this file.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import RETRIEVAL_DIR, STSB_DIR, require_shared

from st_qwen3emb import protocol
from st_qwen3emb.evaluation.summary import FORMAT, SummaryFormatError, read_summary, write_summary

STS_PROMPT = protocol.query_prompt(protocol.SIMILARITY_INSTRUCTION)
STS_ROWS = [
    ("A man is playing a guitar.", "A man plays the guitar.", 4.8),
    ("A woman is slicing an onion.", "A man is riding a horse.", 0.2),
    ("Kids are playing in the park.", "Children play outside.", 3.9),
    ("The cat sleeps on the sofa.", "A dog barks at the mailman.", 0.6),
    ("A plane is taking off.", "An airplane departs.", 4.4),
]


# --- helpers ------------------------------------------------------------------------------------
def write_sts_tsv(path: Path, rows=STS_ROWS) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        handle.write("sentence1\tsentence2\tscore\n")
        for s1, s2, score in rows:
            handle.write(f"{s1}\t{s2}\t{score:.3f}\n")
    return path


def write_beir(folder: Path, *, candidates: bool = False) -> Path:
    (folder / "qrels").mkdir(parents=True)
    docs = {"d1": ("Guitars", "A guitar has six strings."), "d2": ("", "Onions make you cry."), "d3": ("", "Planes fly.")}
    with (folder / "corpus.jsonl").open("w") as handle:
        for doc_id, (title, text) in docs.items():
            handle.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with (folder / "queries.jsonl").open("w") as handle:
        handle.write(json.dumps({"_id": "q1", "text": "how many strings on a guitar"}) + "\n")
        handle.write(json.dumps({"_id": "q2", "text": "what flies"}) + "\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\nq2\td3\t1\n")
    if candidates:
        with (folder / "candidates.jsonl").open("w") as handle:
            handle.write(json.dumps({"query_id": "q1", "candidates": ["d1", "d2"]}) + "\n")
            handle.write(json.dumps({"query_id": "q2", "candidates": ["d2", "d3"]}) + "\n")
    return folder


class EncodedTextRecorder:
    """Records the token sequences the model really encodes, decoded back to text (padding dropped)."""

    def __init__(self, model):
        self.model = model
        self.texts: list[str] = []
        self._inner = model.preprocess

    def __enter__(self):
        def recording_preprocess(inputs, *args, **kwargs):
            features = self._inner(inputs, *args, **kwargs)
            tokenizer = self.model.tokenizer
            for ids, mask in zip(features["input_ids"], features["attention_mask"], strict=True):
                kept = [int(i) for i, m in zip(ids, mask, strict=True) if int(m) == 1]
                self.texts.append(tokenizer.decode(kept, skip_special_tokens=False))
            return features

        self.model.preprocess = recording_preprocess
        return self

    def __exit__(self, *exc):
        del self.model.preprocess


@pytest.fixture(scope="module")
def tiny_model(tiny_qwen_causal):
    from st_qwen3emb import load_model

    return load_model(str(tiny_qwen_causal))


@pytest.fixture()
def sts_file(tmp_path) -> Path:
    return write_sts_tsv(tmp_path / "test.tsv")


# --- summary ------------------------------------------------------------------------------------
def test_summary_round_trip_and_validation(tmp_path):
    from st_qwen3emb.evaluation.summary import result_entry

    entry = result_entry(
        model="m", model_name="m", task="t", task_type="STS",
        dataset={"name": "t", "type": "/x", "split": "test", "config": None},
        instruction=None, main_metric="cosine_spearman", metrics={"cosine_spearman": 0.5}, num_texts=4, seconds=0.1,
    )
    assert entry["main_score"] == 0.5
    path = write_summary([entry], tmp_path / "s.json")
    document = read_summary(path)
    assert document["format"] == FORMAT and document["results"] == [entry]
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves no temporary file
    broken = dict(entry)
    del broken["num_texts"]
    (tmp_path / "bad.json").write_text(json.dumps({"format": FORMAT, "created": "x", "results": [broken]}))
    with pytest.raises(SummaryFormatError, match="result 1 lacks field.*num_texts"):
        read_summary(tmp_path / "bad.json")
    with pytest.raises(KeyError):
        result_entry(**{**{k: entry[k] for k in entry if k != "main_score"}, "main_metric": "absent"})


# --- instructions -------------------------------------------------------------------------------
def test_sts_prompt_rules(tiny_model, minilm_dir):
    from sentence_transformers import SentenceTransformer

    from st_qwen3emb.evaluation.instructions import sts_prompt

    assert sts_prompt(tiny_model).prompt == STS_PROMPT
    assert sts_prompt(tiny_model).instruction == protocol.SIMILARITY_INSTRUCTION
    assert sts_prompt(tiny_model, no_instruction=True).prompt is None
    assert sts_prompt(tiny_model, instruction="Find paraphrases").prompt == protocol.query_prompt("Find paraphrases")
    minilm = SentenceTransformer(str(minilm_dir))
    assert sts_prompt(minilm).prompt is None  # other models get no instruction
    assert sts_prompt(minilm, instruction="query: ").prompt == "query: "


# --- STS on the tiny Qwen3 model: the instruction reaches the encoder ----------------------------
def test_eval_sts_sends_the_sts_instruction_to_the_encoder(tiny_model, sts_file):
    from st_qwen3emb.evaluation.sts import run_sts

    with EncodedTextRecorder(tiny_model) as recorder:
        results = run_sts(["tiny"], [str(sts_file)], loaded={"tiny": tiny_model}, show_progress_bar=False)
    expected = {STS_PROMPT + s + protocol.EOS_TOKEN for s1, s2, _ in STS_ROWS for s in (s1, s2)}
    assert set(recorder.texts) == expected
    (entry,) = results
    assert entry["instruction"] == protocol.SIMILARITY_INSTRUCTION and entry["prompt"] == STS_PROMPT
    assert entry["num_texts"] == 2 * len(STS_ROWS) and entry["seconds"] > 0
    assert entry["main_metric"] == "cosine_spearman" and -1 <= entry["main_score"] <= 1
    assert set(entry["metrics"]) == {f"{s}_{c}" for s in ("cosine", "euclidean", "manhattan", "dot") for c in ("pearson", "spearman")}

    with EncodedTextRecorder(tiny_model) as recorder:
        (entry,) = run_sts(["tiny"], [str(sts_file)], loaded={"tiny": tiny_model}, no_instruction=True,
                           show_progress_bar=False)
    assert set(recorder.texts) == {s + protocol.EOS_TOKEN for s1, s2, _ in STS_ROWS for s in (s1, s2)}
    assert entry["instruction"] is None


def test_mteb_local_sts_sends_the_sts_instruction_and_files_under_the_model(
    tiny_model, tiny_qwen_causal, sts_file, tmp_path
):
    from st_qwen3emb.evaluation.mteb_runner import model_identity, resolve_tasks, run_mteb

    tiny_model.model_card_data.base_model = "Qwen/Qwen3-Embedding-0.6B"  # must not decide where results go
    prompts_before = dict(tiny_model.prompts)
    tasks = resolve_tasks(local_sts=[str(sts_file)])
    with EncodedTextRecorder(tiny_model) as recorder:
        (entry,) = run_mteb(
            tiny_model, tasks, model_id=str(tiny_qwen_causal), output_folder=tmp_path / "out", show_progress_bar=False
        )
    expected = {STS_PROMPT + s + protocol.EOS_TOKEN for s1, s2, _ in STS_ROWS for s in (s1, s2)}
    assert set(recorder.texts) == expected
    assert entry["prompt"] == STS_PROMPT and entry["task_type"] == "STS" and entry["num_texts"] == 10
    assert tiny_model.prompts == prompts_before  # the in-memory model is left as it was

    name, revision = model_identity(str(tiny_qwen_causal))
    assert name.startswith("local/") and revision.startswith("sha256-")
    assert (entry["mteb_model_name"], entry["mteb_model_revision"]) == (name, revision)
    files = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.json"))
    assert f"results/{name.replace('/', '__')}/{revision}/{entry['task']}.json" in files
    assert not any("Qwen" in f for f in files)
    assert read_summary(tmp_path / "out" / "summary.json")["results"] == [entry]


def test_model_identity_changes_with_the_weights(tmp_path):
    from st_qwen3emb.evaluation.mteb_runner import model_identity

    folder = tmp_path / "run" / "final"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"one")
    first = model_identity(str(folder))
    (folder / "model.safetensors").write_bytes(b"two")
    second = model_identity(str(folder))
    assert first[0] == second[0] == "local/run__final" and first[1] != second[1]
    assert model_identity("org/model", revision="abc") == ("org/model", "abc")


def test_mteb_local_retrieval_and_reranking_prompt_queries_only(tiny_model, tmp_path):
    from st_qwen3emb.evaluation.mteb_runner import resolve_tasks, run_mteb

    retrieval = write_beir(tmp_path / "tiny_beir")
    reranking = write_beir(tmp_path / "tiny_rerank", candidates=True)
    tasks = resolve_tasks(local_retrieval=[str(retrieval)], local_reranking=[str(reranking)])
    query_prompt = tiny_model.prompts["query"]
    assert query_prompt == protocol.query_prompt(protocol.DEFAULT_RETRIEVAL_INSTRUCTION)
    with EncodedTextRecorder(tiny_model) as recorder:
        entries = run_mteb(tiny_model, tasks, model_id="tiny", output_folder=tmp_path / "out", show_progress_bar=False)
    eos = protocol.EOS_TOKEN
    queries = {query_prompt + q + eos for q in ("how many strings on a guitar", "what flies")}
    documents = {"Guitars A guitar has six strings." + eos, "Onions make you cry." + eos, "Planes fly." + eos}
    assert set(recorder.texts) == queries | documents
    assert [e["task_type"] for e in entries] == ["Retrieval", "Reranking"]
    for entry in entries:
        assert entry["main_metric"] == "ndcg_at_10" and 0 <= entry["main_score"] <= 1
        assert entry["instruction"] == protocol.DEFAULT_RETRIEVAL_INSTRUCTION


def test_mteb_prompt_table_for_registered_tasks(tiny_model, minilm_dir):
    import mteb
    from mteb.types import PromptType
    from sentence_transformers import SentenceTransformer

    from st_qwen3emb.evaluation.instructions import mteb_prompt_table

    scifact, sts = mteb.get_task("SciFact"), mteb.get_task("STSBenchmark")
    table = mteb_prompt_table(tiny_model, [scifact, sts])
    task_prompt = scifact.metadata.prompt["query"] if isinstance(scifact.metadata.prompt, dict) else scifact.metadata.prompt
    assert table.lookup(scifact.metadata, PromptType.query).prompt == protocol.query_prompt(
        task_prompt or protocol.FALLBACK_RETRIEVAL_INSTRUCTION
    )
    assert table.lookup(scifact.metadata, PromptType.document).prompt is None
    assert table.lookup(sts.metadata, None).prompt == STS_PROMPT
    minilm_table = mteb_prompt_table(SentenceTransformer(str(minilm_dir)), [scifact, sts])
    assert minilm_table.lookup(sts.metadata, None).prompt is None
    assert minilm_table.lookup(scifact.metadata, PromptType.query).prompt is None


# --- errors -------------------------------------------------------------------------------------
def test_unknown_task_and_benchmark_give_close_matches():
    from st_qwen3emb.evaluation.mteb_runner import UnknownTaskError, resolve_tasks

    with pytest.raises(UnknownTaskError, match=r"'STSBenchmrk'.*Close matches: .*STSBenchmark"):
        resolve_tasks(["STSBenchmrk"])
    with pytest.raises(UnknownTaskError, match=r"Close matches: .*MTEB\(eng, v2\)"):
        resolve_tasks(benchmark="MTEB(eng,v2)")


def test_task_needing_the_hub_offline_gives_a_clear_error(monkeypatch):
    import huggingface_hub.constants

    from st_qwen3emb.evaluation.mteb_runner import TaskDataUnavailableError, ensure_task_data, resolve_tasks

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    (task,) = resolve_tasks(["STS12"])

    def offline_load(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'mteb/sts12-sts' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(task, "load_data", offline_load)
    with pytest.raises(TaskDataUnavailableError, match=r"STS12.*mteb/sts12-sts.*HF_HUB_OFFLINE.*--local_sts"):
        ensure_task_data([task])


def test_bad_local_files_name_file_row_and_field(tmp_path):
    from st_qwen3emb.evaluation.local_tasks import LocalTaskError, read_beir
    from st_qwen3emb.evaluation.sts import STSDataError, load_sts_data

    bad = write_sts_tsv(tmp_path / "bad.tsv", [*STS_ROWS[:2], ("a", "b", 7.0)])
    with pytest.raises(STSDataError, match=r"bad.tsv, line 4, field 'score'"):
        load_sts_data(str(bad))
    with pytest.raises(STSDataError, match="no such file"):
        load_sts_data(str(tmp_path / "missing.tsv"))
    folder = write_beir(tmp_path / "beir")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tnope\t1\n")
    with pytest.raises(LocalTaskError, match=r"test.tsv, line 2, field 'corpus-id': 'nope' is not in corpus.jsonl"):
        read_beir(folder)


# --- CLI ----------------------------------------------------------------------------------------
def test_cli_sts_writes_table_json_and_chart(tiny_qwen_st, sts_file, tmp_path, capsys):
    from st_qwen3emb.cli.eval import main

    out = tmp_path / "res" / "results.json"
    assert main(["sts", "--model", str(tiny_qwen_st), "--dataset", str(sts_file), "--output", str(out), "--no_progress"]) == 0
    printed = capsys.readouterr().out
    assert "cosine S" in printed and repr(STS_PROMPT) in printed
    entry = read_summary(out)["results"][0]
    assert entry["model"] == str(tiny_qwen_st) and entry["instruction"] == protocol.SIMILARITY_INSTRUCTION
    assert out.with_suffix(".png").stat().st_size > 1000

    assert main(["sts", "--model", str(tiny_qwen_st), "--dataset", str(tmp_path / "nope.tsv")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["mteb", "--model", str(tiny_qwen_st), "--tasks", "STSBenchmrk"]) == 2
    assert "Close matches" in capsys.readouterr().err


def test_evaluation_modules_do_not_import_mteb():
    code = (
        "import sys; import st_qwen3emb.cli.eval, st_qwen3emb.evaluation.sts, "
        "st_qwen3emb.evaluation.mteb_runner, st_qwen3emb.evaluation.local_tasks; "
        "print('mteb' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# --- real data, real weights (slow) --------------------------------------------------------------
class MemoEncoder:
    """Wraps ``model.encode`` so each (prompt, text) is encoded once per module; results are unchanged."""

    def __init__(self, model):
        self.model, self.inner, self.cache = model, model.encode, {}

    def __call__(self, inputs, *args, prompt=None, prompt_name=None, convert_to_tensor=False, **kwargs):
        import torch

        single = isinstance(inputs, str)
        texts = [inputs] if single else list(inputs)
        resolved = self.model._resolve_prompt(prompt, prompt_name) or ""
        missing = list(dict.fromkeys(t for t in texts if (resolved, t) not in self.cache))
        if missing:
            kwargs.pop("convert_to_numpy", None)
            vectors = self.inner(missing, *args, prompt=resolved, convert_to_numpy=True, **kwargs)
            self.cache.update({(resolved, t): v for t, v in zip(missing, vectors, strict=True)})
        out = np.stack([self.cache[(resolved, t)] for t in texts])
        out = torch.from_numpy(out) if convert_to_tensor else out
        return out[0] if single else out


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_dir))
    model.encode = MemoEncoder(model)
    return model


def read_stsb_independently(path: Path):
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    return [r[0] for r in rows], [r[1] for r in rows], [float(r[2]) / 5 for r in rows]


@pytest.mark.slow
def test_stsb_spearman_matches_sentence_transformers_and_mteb(minilm, minilm_dir, tmp_path, monkeypatch):
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    import st_qwen3emb.model
    from st_qwen3emb.cli.eval import mteb_main, sts_main

    test_tsv = require_shared(STSB_DIR / "test.tsv")
    s1, s2, gold = read_stsb_independently(test_tsv)
    assert len(gold) == 1379
    reference = EmbeddingSimilarityEvaluator(s1, s2, gold, main_similarity="cosine")(minilm)["spearman_cosine"]

    monkeypatch.setattr(st_qwen3emb.model, "load_model", lambda *a, **k: minilm)
    out = tmp_path / "sts.json"
    assert sts_main(["--model", str(minilm_dir), "--dataset", str(test_tsv), "--output", str(out), "--no_progress"]) == 0
    (entry,) = read_summary(out)["results"]
    assert entry["instruction"] is None
    assert entry["main_score"] == pytest.approx(reference, abs=1e-4)
    assert entry["main_score"] == pytest.approx(0.8203, abs=1e-4)

    assert mteb_main(["--model", str(minilm_dir), "--local_sts", str(test_tsv), "--output_folder",
                      str(tmp_path / "mteb"), "--no_progress"]) == 0
    (mteb_entry,) = read_summary(tmp_path / "mteb" / "summary.json")["results"]
    assert mteb_entry["main_metric"] == "cosine_spearman"
    assert mteb_entry["main_score"] == pytest.approx(entry["main_score"], abs=1e-4)


def ndcg_at_10(run: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> float:
    """trec_eval's ndcg_cut_10: gain = rel, 1/log2(rank + 1) discount, rel <= 0 not relevant, mean over qrels' queries."""
    values = []
    for query_id, judged in qrels.items():
        gains = {doc: rel for doc, rel in judged.items() if rel > 0}
        dcg = sum(gains.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(run.get(query_id, [])[:10]))
        ideal = sum(g / math.log2(rank + 2) for rank, g in enumerate(sorted(gains.values(), reverse=True)[:10]))
        values.append(dcg / ideal if ideal > 0 else 0.0)
    return sum(values) / len(values)


@pytest.mark.slow
def test_cranfield_ndcg_matches_trec_eval_definition(minilm, minilm_dir, tmp_path):
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    from st_qwen3emb.evaluation.mteb_runner import resolve_tasks, run_mteb

    folder = require_shared(RETRIEVAL_DIR / "cranfield")
    corpus = {}
    for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        corpus[row["_id"]] = (row["title"] + " " + row["text"]) if row["title"] else row["text"]
    queries = {row["_id"]: row["text"] for row in map(json.loads, (folder / "queries.jsonl").read_text().splitlines())}
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / "test.tsv").open() as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    assert len(corpus) == 1400 and len(queries) == 225

    doc_ids, query_ids = list(corpus), list(queries)
    doc_emb = minilm.encode_document([corpus[d] for d in doc_ids], convert_to_tensor=True)
    query_emb = minilm.encode_query([queries[q] for q in query_ids], convert_to_tensor=True)
    scores = minilm.similarity(query_emb, doc_emb).numpy()
    run = {q: [doc_ids[j] for j in np.argsort(-scores[i], kind="stable")[:10]] for i, q in enumerate(query_ids)}
    reference = ndcg_at_10(run, qrels)

    (entry,) = run_mteb(minilm, resolve_tasks(local_retrieval=[str(folder)]), model_id=str(minilm_dir),
                        output_folder=tmp_path / "mteb", show_progress_bar=False)
    assert entry["main_metric"] == "ndcg_at_10"
    assert entry["main_score"] == pytest.approx(reference, abs=1e-3)

    # Second cross-check: binarised relevance, sentence-transformers' evaluator and our nDCG agree.
    relevant = {q: {d for d, rel in judged.items() if rel > 0} for q, judged in qrels.items()}
    ir = InformationRetrievalEvaluator(queries, corpus, relevant, ndcg_at_k=[10], show_progress_bar=False)
    ir_metrics = ir(minilm)
    (ir_ndcg,) = [value for key, value in ir_metrics.items() if key.endswith("cosine_ndcg@10")]
    binary = {q: {d: 1 for d in docs} for q, docs in relevant.items()}
    assert ir_ndcg == pytest.approx(0.3995, abs=1e-3)
    assert ndcg_at_10(run, binary) == pytest.approx(ir_ndcg, abs=1e-3)
