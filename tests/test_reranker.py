"""The Qwen3 reranker: upstream-exact scores, portable saves, the seq-cls export, losses, data and training."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from _plain_process import run_plain

from st_qwen3emb import protocol
from st_qwen3emb.reranker import load_reranker

QUERY_DOCS = [
    ("What is the capital of China?", "The capital of China is Beijing."),
    ("What is the capital of China?", "Gravity is a force that attracts two bodies towards each other."),
    ("Explain gravity", "Gravity is a force that attracts two bodies towards each other. It gives weight to physical "
                        "objects and is responsible for the movement of planets around the sun."),
    ("Explain gravity", "ok"),
]


# --- the reference: the Qwen3-Reranker README's plain-transformers recipe, written out here -------------
REF_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
    "provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n"
)
REF_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"


def format_instruction(instruction, query, doc):
    if instruction is None:
        instruction = "Given a web search query, retrieve relevant passages that answer the query"
    return f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}"


def reference_scores(path, pairs, instruction=None, max_length=8192):
    """``compute_logits(process_inputs(pairs))`` of the README, returning (probabilities, z_yes - z_no)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(str(path)).eval()
    token_false_id = tokenizer.convert_tokens_to_ids("no")
    token_true_id = tokenizer.convert_tokens_to_ids("yes")
    prefix_tokens = tokenizer.encode(REF_PREFIX, add_special_tokens=False)
    suffix_tokens = tokenizer.encode(REF_SUFFIX, add_special_tokens=False)

    def process_inputs(texts):
        inputs = tokenizer(
            texts, padding=False, truncation="longest_first", return_attention_mask=False,
            max_length=max_length - len(prefix_tokens) - len(suffix_tokens),
        )
        for i, ele in enumerate(inputs["input_ids"]):
            inputs["input_ids"][i] = prefix_tokens + ele + suffix_tokens
        return tokenizer.pad(inputs, padding=True, return_tensors="pt", max_length=max_length)

    @torch.no_grad()
    def compute_logits(inputs):
        batch_scores = model(**inputs).logits[:, -1, :]
        true_vector = batch_scores[:, token_true_id]
        false_vector = batch_scores[:, token_false_id]
        stacked = torch.stack([false_vector, true_vector], dim=1)
        log_probs = torch.nn.functional.log_softmax(stacked, dim=1)
        return log_probs[:, 1].exp().numpy(), (true_vector - false_vector).numpy()

    texts = [format_instruction(instruction, q, d) for q, d in pairs]
    return compute_logits(process_inputs(texts))


@pytest.fixture(scope="session")
def tiny_reranker(tmp_path_factory):
    """A tiny random ``Qwen3ForCausalLM`` reranker with the real Qwen3 tokenizer.

    The published Qwen3-Reranker tokenizer adds no special tokens (its post-processor is plain ByteLevel,
    unlike the updated Qwen3-Embedding tokenizer that appends ``<|endoftext|>``), which is what the README
    recipe's ``tokenizer(pairs)`` relies on; the fixture reproduces that.
    """
    from tokenizers import processors

    from st_qwen3emb.fixtures import build_qwen3_checkpoint, load_skeleton_tokenizer, skeleton_dir

    if skeleton_dir() is None:
        pytest.skip("the Qwen3 skeleton tokenizer (../shared) is absent; the reranker tests need the real vocabulary")
    tokenizer = load_skeleton_tokenizer()
    tokenizer.backend_tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    return build_qwen3_checkpoint(tmp_path_factory.mktemp("tiny_reranker"), tokenizer=tokenizer, seed=3)


def raw_scores(model, pairs, **kwargs):
    return model.predict(pairs, activation_fn=torch.nn.Identity(), **kwargs)


# --- parity with the README recipe -------------------------------------------------------------------
def test_template_renders_like_protocol(tiny_reranker):
    model = load_reranker(str(tiny_reranker))
    features = model.preprocess([QUERY_DOCS[0]])
    text = model.tokenizer.decode(features["input_ids"][0])
    assert text == REF_PREFIX + format_instruction(None, *QUERY_DOCS[0]) + REF_SUFFIX
    assert text == protocol.format_reranker_pair(*QUERY_DOCS[0])


def test_matches_official_recipe(tiny_reranker):
    model = load_reranker(str(tiny_reranker))
    expected_prob, expected_logit = reference_scores(tiny_reranker, QUERY_DOCS)
    np.testing.assert_allclose(model.predict(QUERY_DOCS), expected_prob, atol=1e-5)
    np.testing.assert_allclose(raw_scores(model, QUERY_DOCS), expected_logit, atol=1e-5)
    # batch invariance: left padding keeps the last position real
    alone = np.array([model.predict([pair])[0] for pair in QUERY_DOCS])
    np.testing.assert_allclose(alone, expected_prob, atol=1e-5)


def test_custom_instruction_per_model_and_per_call(tiny_reranker):
    instruction = "Judge whether the passage answers the question"
    expected_prob, _ = reference_scores(tiny_reranker, QUERY_DOCS, instruction=instruction)
    model = load_reranker(str(tiny_reranker), instruction=instruction)
    np.testing.assert_allclose(model.predict(QUERY_DOCS), expected_prob, atol=1e-5)
    default = load_reranker(str(tiny_reranker))
    np.testing.assert_allclose(default.predict(QUERY_DOCS, prompt=instruction), expected_prob, atol=1e-5)
    default_prob, _ = reference_scores(tiny_reranker, QUERY_DOCS)
    assert not np.allclose(default_prob, expected_prob, atol=1e-6)


def test_truncation_keeps_template_suffix(tiny_reranker):
    model = load_reranker(str(tiny_reranker), max_length=90)
    long_doc = " ".join(["gravity attracts bodies"] * 60)
    pairs = [("Explain gravity", long_doc), QUERY_DOCS[0]]
    expected_prob, _ = reference_scores(tiny_reranker, pairs, max_length=90)
    np.testing.assert_allclose(model.predict(pairs), expected_prob, atol=1e-5)
    assert model.preprocess(pairs)["input_ids"].shape[1] == 90


def test_rejects_non_qwen(minilm_dir):
    from st_qwen3emb.model import ModelLoadError

    with pytest.raises(ModelLoadError, match="not a Qwen3 model"):
        load_reranker(str(minilm_dir))


# --- portable save ---------------------------------------------------------------------------------------
def predict_in_plain_process(folder, pairs, tmp_path):
    """Scores from a fresh Python in which st_qwen3emb cannot be imported (plain sentence-transformers)."""
    body = """
    from sentence_transformers import CrossEncoder
    model = CrossEncoder(sys.argv[1])
    out = {"scores": model.predict(json.loads(sys.argv[2])).tolist()}
    """
    return np.array(run_plain(body, folder, pairs, tmp_path, "plain_ce")["scores"])


def test_portable_save_scores_identically(tiny_reranker, tmp_path):
    instruction = "Find the passage that answers"
    model = load_reranker(str(tiny_reranker), instruction=instruction)
    folder = tmp_path / "saved"
    model.save(str(folder))
    assert (folder / "chat_template.jinja").is_file()
    assert not any(p.suffix == ".bin" for p in folder.rglob("*"))
    expected_prob, _ = reference_scores(tiny_reranker, QUERY_DOCS, instruction=instruction)
    np.testing.assert_allclose(predict_in_plain_process(folder, QUERY_DOCS, tmp_path), expected_prob, atol=1e-5)
    reloaded = load_reranker(str(folder))
    np.testing.assert_allclose(reloaded.predict(QUERY_DOCS), expected_prob, atol=1e-5)


# --- the seq-cls export -----------------------------------------------------------------------------------------
def test_seq_cls_export_scores_identically(tiny_reranker, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from st_qwen3emb.reranker.export import export_reranker

    instruction = "Find the passage that answers"
    source = tmp_path / "ce"
    load_reranker(str(tiny_reranker), instruction=instruction).save(str(source))
    out = export_reranker(source, tmp_path / "seq", format="seq-cls")
    assert "\n# seq\n" in (out / "README.md").read_text()  # the card is named after the output, not the scratch folder
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["Qwen3ForSequenceClassification"] and len(config["id2label"]) == 1
    expected_prob, expected_logit = reference_scores(tiny_reranker, QUERY_DOCS, instruction=instruction)
    # As a server (vLLM, TEI) runs it: plain transformers on the formatted text, one logit at the last token.
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    model = AutoModelForSequenceClassification.from_pretrained(str(out)).eval()
    texts = [REF_PREFIX + format_instruction(instruction, q, d) + REF_SUFFIX for q, d in QUERY_DOCS]
    batch = tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        logits = model(**batch).logits[:, 0].numpy()
    np.testing.assert_allclose(logits, expected_logit, atol=1e-5)
    # As a CrossEncoder, in plain sentence-transformers
    np.testing.assert_allclose(predict_in_plain_process(out, QUERY_DOCS, tmp_path), expected_prob, atol=1e-5)
    with pytest.raises(Exception, match="already exists"):
        export_reranker(source, out, format="seq-cls")


# --- losses on fixed logits ----------------------------------------------------------------------------------------
def test_listwise_loss_matches_formula(monkeypatch):
    from st_qwen3emb.reranker.losses import listwise_reranker_loss

    logits = torch.tensor([2.0, 0.5, -1.0, 0.3, 1.5, 0.7])
    sizes = [3, 1, 2]  # the single-document group is skipped (min size 2)

    def ce(group, t):
        z = [x / t for x in group]
        return -z[0] + math.log(sum(math.exp(v) for v in z))

    expected = (ce([2.0, 0.5, -1.0], 1.0) + ce([1.5, 0.7], 1.0)) / 2
    assert listwise_reranker_loss(logits, sizes).item() == pytest.approx(expected, abs=1e-6)
    expected_t = (ce([2.0, 0.5, -1.0], 0.5) + ce([1.5, 0.7], 0.5)) / 2
    assert listwise_reranker_loss(logits, sizes, temperature=0.5).item() == pytest.approx(expected_t, abs=1e-6)
    only_big = ce([2.0, 0.5, -1.0], 1.0)
    assert listwise_reranker_loss(logits, sizes, min_group_size=3).item() == pytest.approx(only_big, abs=1e-6)
    assert listwise_reranker_loss(logits[3:4], [1]).item() == 0.0


def test_pointwise_loss_matches_formula():
    from st_qwen3emb.reranker.losses import pointwise_reranker_loss

    logits = torch.tensor([2.0, 0.5, -1.0, 0.3])
    labels = torch.tensor([1.0, 0.0, 0.0, 1.0])

    def bce(z, y):
        p = 1 / (1 + math.exp(-z))
        return -(y * math.log(p) + (1 - y) * math.log(1 - p))

    expected = sum(bce(z, y) for z, y in zip(logits.tolist(), labels.tolist(), strict=True)) / 4
    assert pointwise_reranker_loss(logits, labels).item() == pytest.approx(expected, abs=1e-6)


BATCH = [
    ["What is the capital of China?", "Explain gravity"],
    ["The capital of China is Beijing.", "Gravity attracts bodies."],
    ["Paris is in France.", "Beijing is big."],
    ["Cats sleep a lot.", ""],  # padding: the second group has one negative
]


def test_loss_modules_score_groups(tiny_reranker, monkeypatch):
    from st_qwen3emb.losses import build_loss
    from st_qwen3emb.reranker.losses import listwise_reranker_loss, pointwise_reranker_loss

    model = load_reranker(str(tiny_reranker), max_length=128)
    pairs = [(BATCH[0][0], BATCH[1][0]), (BATCH[0][0], BATCH[2][0]), (BATCH[0][0], BATCH[3][0]),
             (BATCH[0][1], BATCH[1][1]), (BATCH[0][1], BATCH[2][1])]
    z = torch.tensor(raw_scores(model, pairs))
    with torch.no_grad():
        point = build_loss("pointwise_reranker", model)(BATCH, None)
        monkeypatch.setenv("LISTWISE_RERANKER_TEMPERATURE", "0.5")
        listwise = build_loss("listwise_reranker", model)(BATCH, None)
    assert point.item() == pytest.approx(pointwise_reranker_loss(z, torch.tensor([1.0, 0, 0, 1, 0])).item(), abs=1e-5)
    assert listwise.item() == pytest.approx(listwise_reranker_loss(z, [3, 2], temperature=0.5).item(), abs=1e-5)


# --- data ---------------------------------------------------------------------------------------------------------
def test_reranker_groups_follow_swift_limits(monkeypatch):
    from st_qwen3emb.data import Record
    from st_qwen3emb.reranker.data import groups_to_dataset, reranker_groups

    record = Record("q", ["p1", "p2", "p3"], [f"n{i}" for i in range(10)], None, "mem.jsonl", 1)
    groups = reranker_groups([record])
    assert len(groups) == 1 and len(groups[0][2]) == 7  # MAX_POSITIVE_SAMPLES=1, MAX_NEGATIVE_SAMPLES=7
    monkeypatch.setenv("MAX_POSITIVE_SAMPLES", "2")
    monkeypatch.setenv("MAX_NEGATIVE_SAMPLES", "3")
    groups = reranker_groups([record, Record("q2", ["p"], [], None, "mem.jsonl", 2)])
    assert [len(g[2]) for g in groups] == [3, 3, 0]
    assert {g[1] for g in groups[:2]} <= {"p1", "p2", "p3"}
    dataset = groups_to_dataset(groups)
    assert dataset.column_names == ["anchor", "positive", "negative_1", "negative_2", "negative_3"]
    assert dataset[2]["negative_1"] == ""
    from st_qwen3emb.data import DatasetValidationError

    with pytest.raises(DatasetValidationError, match="mem.jsonl, row 5"):
        reranker_groups([Record("q", [], ["n"], None, "mem.jsonl", 5)])


def maniscope_dir():
    from tests.conftest import RETRIEVAL_DIR, require_shared

    return require_shared(RETRIEVAL_DIR / "maniscope_scifact_rerank10")


def test_maniscope_adapter():
    from st_qwen3emb.data import read_records
    from st_qwen3emb.reranker.data import load_reranker_dataset, maniscope_spec, reranking_samples

    folder = maniscope_dir()
    spec = maniscope_spec(folder)
    samples = reranking_samples(read_records(spec))
    assert len(samples) == 100
    assert all(len(s["documents"]) == 10 and len(s["positive"]) == 1 for s in samples)
    assert all(s["positive"][0] in s["documents"] for s in samples)
    train = load_reranker_dataset(spec)
    assert len(train) == 100 and len(train.column_names) == 2 + 7


def test_maniscope_reranking_evaluation_runs(tiny_reranker):
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator

    from st_qwen3emb.reranker.data import load_reranking_samples, maniscope_spec

    samples = load_reranking_samples(maniscope_spec(maniscope_dir()))[:4]
    model = load_reranker(str(tiny_reranker), max_length=256)
    metrics = CrossEncoderRerankingEvaluator(samples, at_k=10, name="scifact", write_csv=False)(model)
    assert 0.0 < metrics["scifact_mrr@10"] <= 1.0 and 0.0 < metrics["scifact_ndcg@10"] <= 1.0


# --- training ------------------------------------------------------------------------------------------------------
TRAIN_ROWS = [
    {"query": "What is the capital of China?", "response": "The capital of China is Beijing.",
     "rejected_response": ["Gravity attracts bodies.", "Paris is in France."]},
    {"query": "Explain gravity", "response": "Gravity is a force between bodies.", "rejected_response": ["Beijing."]},
    {"query": "What do cats eat?", "response": "Cats eat meat.", "rejected_response": ["Dogs bark.", "Fish swim."]},
]


@pytest.mark.parametrize("loss_type,train_type", [("pointwise_reranker", "full"), ("listwise_reranker", "lora")])
def test_training_steps_and_export(loss_type, train_type, tiny_reranker, tmp_path):
    from st_qwen3emb.config import parse_args
    from st_qwen3emb.reranker.export import export_reranker, probe_scores
    from st_qwen3emb.reranker.train import train_reranker

    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in TRAIN_ROWS))
    config = parse_args([
        "--model", str(tiny_reranker), "--task_type", "generative_reranker", "--model_type", "qwen3_reranker",
        "--loss_type", loss_type, "--train_type", train_type, "--dataset", str(data),
        *(["--lora_rank", "4"] if train_type == "lora" else []),
        "--val_dataset", str(data), "--per_device_train_batch_size", "2", "--num_train_epochs", "1",
        "--save_steps", "2", "--logging_steps", "1", "--max_length", "96", "--learning_rate", "1e-3",
        "--output_dir", str(tmp_path / "out"), "--query_instruction", "Judge relevance",
    ])
    run = train_reranker(config)
    lines = [json.loads(x) for x in (run / "logging.jsonl").read_text().splitlines()]
    losses = [x["loss"] for x in lines if "loss" in x]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    assert any("eval_rerank_ndcg@10" in x and "eval_rerank_mrr@10" in x for x in lines)
    args = json.loads((run / "args.json").read_text())
    assert args["reranker_instruction"] == "Judge relevance" and args["loss_type"] == loss_type
    expected_env = {"MAX_POSITIVE_SAMPLES": 1, "MAX_NEGATIVE_SAMPLES": 7}
    if loss_type == "listwise_reranker":
        expected_env.update({"LISTWISE_RERANKER_TEMPERATURE": 1.0, "LISTWISE_RERANKER_MIN_GROUP_SIZE": 2})
    assert args["env"] == expected_env
    assert (run / "final" / "training_curves.png").is_file()  # drawn before the card was written
    final = load_reranker(str(run / "final"))
    base = load_reranker(str(tiny_reranker), instruction="Judge relevance")
    assert not np.allclose(probe_scores(final), probe_scores(base), atol=1e-6)  # the weights moved
    checkpoint = run / "checkpoint-2"
    exported = export_reranker(checkpoint, tmp_path / "export")
    assert not (exported / "adapter_config.json").exists()
    np.testing.assert_allclose(
        predict_in_plain_process(exported, QUERY_DOCS, tmp_path),
        load_reranker(str(checkpoint)).predict(QUERY_DOCS), atol=1e-5,
    )


# --- real weights ---------------------------------------------------------------------------------------------------
OFFLINE_CANDIDATES = ("Qwen/Qwen3-Reranker-0.6B", "cross-encoder/ms-marco-MiniLM-L6-v2")


@pytest.mark.slow
def test_real_reranker_on_maniscope():
    """End-to-end reranking evaluation with real weights, if any small reranker is in the local Hub cache."""
    from sentence_transformers import CrossEncoder
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator

    from st_qwen3emb.reranker.data import load_reranking_samples, maniscope_spec

    samples = load_reranking_samples(maniscope_spec(maniscope_dir()))[:20]
    model = None
    for name in OFFLINE_CANDIDATES:
        try:
            model = load_reranker(name, max_length=512) if "Qwen3" in name else CrossEncoder(name, local_files_only=True)
            break
        except Exception:  # noqa: BLE001 - not in the cache: try the next one
            continue
    if model is None:
        pytest.skip(f"no real cross-encoder weights offline (tried {', '.join(OFFLINE_CANDIDATES)} in the Hub cache; "
                    "tests never download)")
    metrics = CrossEncoderRerankingEvaluator(samples, at_k=10, name="scifact", write_csv=False)(model)
    assert metrics["scifact_ndcg@10"] > metrics["scifact_base_ndcg@10"]
