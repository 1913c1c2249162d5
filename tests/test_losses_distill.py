"""``distill_kl`` and ``margin_mse``: the math against plain loops, the modules against the math, the data path
(``scores`` lists -> a label matrix) and a short training run of each on the tiny Qwen3 model."""

from __future__ import annotations

import json
import math

import pytest
import torch
from _loss_helpers import EmbeddingTable

from st_qwen3emb.losses import build_loss, loss_spec
from st_qwen3emb.losses.distill_kl import distill_kl_loss
from st_qwen3emb.losses.margin_mse import margin_mse_loss


def _cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a)) / math.sqrt(sum(y * y for y in b))


def _softmax(row: list[float]) -> list[float]:
    top = max(row)
    exps = [math.exp(v - top) for v in row]
    return [e / sum(exps) for e in exps]


def kl_reference(student: list[list[float]], teacher: list[list[float]], t: float, t_teacher: float) -> float:
    total = 0.0
    for s_row, t_row in zip(student, teacher, strict=True):
        p = _softmax([v / t_teacher for v in t_row])
        q = _softmax([v / t for v in s_row])
        total += sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q, strict=True) if pi > 0)
    return total / len(student) * t * t


def margin_reference(student: list[list[float]], teacher: list[list[float]]) -> float:
    errors = [
        ((s[0] - s[j]) - (t[0] - t[j])) ** 2 for s, t in zip(student, teacher, strict=True) for j in range(1, len(s))
    ]
    return sum(errors) / len(errors)


def _batch(seed: int, batch: int = 4, k: int = 3, dim: int = 8):
    g = torch.Generator().manual_seed(seed)
    columns = [torch.randn(batch, dim, generator=g, dtype=torch.float64) for _ in range(2 + k)]
    teacher = torch.randn(batch, 1 + k, generator=g, dtype=torch.float64) * 3
    return columns, teacher


def _student_scores(columns: list[torch.Tensor], scale: torch.Tensor | None = None) -> list[list[float]]:
    cols = [c * scale if scale is not None else c for c in columns]
    return [[_cos(cols[0][i].tolist(), doc[i].tolist()) for doc in cols[1:]] for i in range(cols[0].shape[0])]


@pytest.mark.parametrize(("seed", "t", "t_teacher"), [(0, 0.05, 1.0), (1, 1.0, 1.0), (2, 0.2, 0.05)])
def test_distill_kl_matches_a_loop_reference(seed, t, t_teacher):
    columns, teacher = _batch(seed)
    student = torch.tensor(_student_scores(columns), dtype=torch.float64)
    got = distill_kl_loss(student, teacher, t, t_teacher).item()
    assert got == pytest.approx(kl_reference(student.tolist(), teacher.tolist(), t, t_teacher), abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_margin_mse_matches_a_loop_reference(seed):
    columns, teacher = _batch(seed)
    student = torch.tensor(_student_scores(columns), dtype=torch.float64)
    assert margin_mse_loss(student, teacher).item() == pytest.approx(
        margin_reference(student.tolist(), teacher.tolist()), abs=1e-6
    )


@pytest.mark.parametrize("name", ["distill_kl", "margin_mse"])
def test_loss_modules_on_embeddings_equal_the_loop_reference(name, monkeypatch):
    monkeypatch.setenv("DISTILL_TEMPERATURE", "0.1")
    monkeypatch.setenv("DISTILL_TEACHER_TEMPERATURE", "2.0")
    model = EmbeddingTable()
    columns, teacher = _batch(7)
    loss = build_loss(name, model)
    got = loss([{"emb": c} for c in columns], teacher)
    student = _student_scores(columns, model.scale.detach())
    want = kl_reference(student, teacher.tolist(), 0.1, 2.0) if name == "distill_kl" else margin_reference(student, teacher.tolist())
    assert got.item() == pytest.approx(want, abs=1e-6)
    got.backward()
    assert model.scale.grad is not None and torch.isfinite(model.scale.grad).all()


@pytest.mark.parametrize("name", ["distill_kl", "margin_mse"])
def test_loss_modules_name_missing_or_miscounted_scores(name):
    loss = build_loss(name, EmbeddingTable())
    columns, teacher = _batch(3)
    features = [{"emb": c} for c in columns]
    with pytest.raises(ValueError, match="teacher's scores"):
        loss(features, None)
    with pytest.raises(ValueError, match="expects 4 teacher scores per row"):
        loss(features, teacher[:, :3])
    assert loss_spec(name).label_kind == "teacher_scores" and loss_spec(name).negatives


def test_bad_distill_temperature_is_an_error(monkeypatch):
    monkeypatch.setenv("DISTILL_TEMPERATURE", "0")
    with pytest.raises(ValueError, match="DISTILL_TEMPERATURE"):
        build_loss("distill_kl", EmbeddingTable())


def test_distill_variables_are_declared_recorded_and_checked_at_start_up(monkeypatch, tmp_path, capsys):
    from st_qwen3emb.cli.sft import main as sft_main
    from st_qwen3emb.losses import LOSS_ENV_VARIABLES, loss_environment

    assert loss_spec("distill_kl").env == ("DISTILL_TEMPERATURE", "DISTILL_TEACHER_TEMPERATURE")
    assert {"DISTILL_TEMPERATURE", "DISTILL_TEACHER_TEMPERATURE"} <= set(LOSS_ENV_VARIABLES)
    assert loss_environment("distill_kl") == {"DISTILL_TEMPERATURE": 0.05, "DISTILL_TEACHER_TEMPERATURE": 1.0}
    monkeypatch.setenv("DISTILL_TEACHER_TEMPERATURE", "0.5")
    assert loss_environment("distill_kl")["DISTILL_TEACHER_TEMPERATURE"] == 0.5
    # Checked with the flags, whatever the loss: a bad value stops sft before anything loads.
    monkeypatch.setenv("DISTILL_TEACHER_TEMPERATURE", "hot")
    argv = ["--model", str(tmp_path / "no-model"), "--dataset", str(tmp_path / "none.jsonl"),
            "--output_dir", str(tmp_path / "out"), "--loss_type", "infonce"]  # fmt: skip
    assert sft_main(argv) == 2
    assert "DISTILL_TEACHER_TEMPERATURE='hot' is not valid; accepted: a number > 0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# --- the data path and a training run ---------------------------------------------------------------------------
ROWS = [
    ("what do cats eat", "Cats eat fish and meat.", ["Dogs bark at night.", "The sun is hot.", "Rain falls."]),
    ("how fast is a plane", "Planes fly at 900 km/h.", ["Cars drive on roads.", "Fish swim.", "Snow is cold."]),
    ("who wrote hamlet", "Shakespeare wrote Hamlet.", ["Paris is in France.", "Tea is hot.", "Birds sing."]),
    ("when is winter", "Winter comes in December.", ["Apples are red.", "Music is loud.", "Ice melts."]),
]


@pytest.fixture()
def scored_file(tmp_path):
    path = tmp_path / "mined.jsonl"
    lines = []
    for i, (q, pos, negs) in enumerate(ROWS):
        lines.append({
            "messages": [{"role": "user", "content": q}],
            "positive_messages": [[{"role": "user", "content": pos}]],
            "negative_messages": [[{"role": "user", "content": n}] for n in negs],
            "scores": [5.0 + i, 1.0, -1.0, -2.0],
        })  # fmt: skip
    path.write_text("".join(json.dumps(row) + "\n" for row in lines))
    return path


def test_scores_become_a_label_matrix_and_missing_scores_are_named(scored_file, tmp_path):
    from st_qwen3emb.data import DatasetValidationError, load_dataset

    ds = load_dataset(str(scored_file), loss_type="distill_kl")
    assert ds.column_names == ["anchor", "positive", "negative_1", "negative_2", "negative_3", "label"]
    assert ds["label"][1] == [6.0, 1.0, -1.0, -2.0]
    two = load_dataset(str(scored_file), loss_type="margin_mse", hard_negatives=2)
    assert two["label"][0] == [5.0, 1.0, -1.0] and "negative_3" not in two.column_names
    bare = tmp_path / "bare.jsonl"
    bare.write_text(json.dumps({"query": "q", "response": "p", "rejected_response": ["n"]}) + "\n")
    with pytest.raises(DatasetValidationError, match=r"bare.jsonl, line 1, field 'scores': missing.*mine --scores"):
        load_dataset(str(bare), loss_type="distill_kl")
    short = tmp_path / "short.jsonl"
    short.write_text(json.dumps({"query": "q", "response": "p", "rejected_response": ["n"], "scores": [1, 2, 3]}) + "\n")
    with pytest.raises(DatasetValidationError, match="3 scores for 1 positive and 1 negatives"):
        load_dataset(str(short), loss_type="margin_mse")


@pytest.mark.parametrize("name", ["distill_kl", "margin_mse"])
def test_training_with_distillation_runs_end_to_end(name, tiny_qwen_causal, scored_file, tmp_path):
    from st_qwen3emb.cli.sft import main as sft_main

    out = tmp_path / "out"
    argv = [
        "--model", str(tiny_qwen_causal), "--dataset", str(scored_file), "--output_dir", str(out), "--loss_type", name,
        "--per_device_train_batch_size", "2", "--max_steps", "2", "--logging_steps", "1", "--learning_rate", "1e-3",
        "--dataloader_num_workers", "0", "--disable_tqdm", "true", "--save_strategy", "no",
    ]  # fmt: skip
    assert sft_main(argv) == 0
    run = next(p for p in out.iterdir() if p.name.startswith("v"))
    losses = [json.loads(line)["loss"] for line in (run / "logging.jsonl").read_text().splitlines() if '"loss"' in line]
    assert losses and all(math.isfinite(v) for v in losses)
    assert (run / "final" / "model.safetensors").is_file()
    env = json.loads((run / "args.json").read_text())["env"]
    assert env == ({"DISTILL_TEMPERATURE": 0.05, "DISTILL_TEACHER_TEMPERATURE": 1.0} if name == "distill_kl" else {})
