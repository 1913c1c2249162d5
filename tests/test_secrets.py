"""Secrets never reach a file, a log or a card (issue 17.6), and the card a run writes carries the run's final name
(issue 14.2): one tiny training run with ``--hub_token`` and a token-like value in another flag, then grep."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from st_qwen3emb.cli.sft import main as sft_main
from st_qwen3emb.redaction import REDACTED, redact_mapping

FAKE_TOKEN = "hf_FAKEtokenForTheTestsOnly0123456789ab"
OTHER_TOKEN = "hf_SECONDfakeTokenInARunName987654321"


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory) -> Path:
    rows = [("A man plays a guitar.", "A person plays guitar.", 0.84), ("A dog runs.", "A cat sleeps.", 0.1),
            ("Kids play football.", "Children play soccer.", 0.92), ("The sun is bright.", "It rains.", 0.08)]
    path = tmp_path_factory.mktemp("data") / "sts.jsonl"
    path.write_text("".join(json.dumps({"query": a, "response": b, "label": s}) + "\n" for a, b, s in rows))
    return path


def test_hub_token_is_written_nowhere(tiny_qwen_causal, pairs_file, tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "out"
    argv = [
        "--model", str(tiny_qwen_causal), "--dataset", str(pairs_file), "--output_dir", str(out),
        "--loss_type", "cosine_similarity", "--per_device_train_batch_size", "2", "--max_steps", "2",
        "--save_steps", "1", "--logging_steps", "1", "--dataloader_num_workers", "0", "--disable_tqdm", "true",
        "--hub_token", FAKE_TOKEN, "--run_name", f"run-{OTHER_TOKEN}",
    ]  # fmt: skip
    assert sft_main(argv) == 0
    captured = capsys.readouterr()
    for text in (captured.out, captured.err, caplog.text):
        assert FAKE_TOKEN not in text and OTHER_TOKEN not in text
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "training_args.bin" for p in files) and any(p.name == "args.json" for p in files)
    for path in files:  # grep -r
        data = path.read_bytes()
        assert FAKE_TOKEN.encode() not in data and OTHER_TOKEN.encode() not in data, path
        assert b"hf_FAKE" not in data and b"hf_SECOND" not in data, path
    run = next(p for p in out.iterdir() if p.name.startswith("v0-"))
    args = json.loads((run / "args.json").read_text())
    assert "hub_token" not in args and args["run_name"] == f"run-{REDACTED}"
    saved = torch.load(next(run.glob("checkpoint-*/training_args.bin")), weights_only=False)
    assert saved.hub_token is None and saved.run_name == f"run-{REDACTED}"
    # the card is titled after the run (issue 14.2), not the temporary folder final/ was written in
    card = (run / "final" / "README.md").read_text()
    assert ".tmp-final" not in card
    from st_qwen3emb.card_markdown import plain

    assert f"\n# {plain(f'{tiny_qwen_causal.name}-{run.name}')}\n" in card
    from st_qwen3emb import hub

    hub.check_no_token(run / "final", hub.files_to_upload(run / "final"))  # push would not refuse it


def test_redaction_rules():
    record = {"hub_token": FAKE_TOKEN, "my_secret": "x", "db_password": 3, "include_tokens_per_second": True,
              "dataset": [f"/data/{FAKE_TOKEN}.jsonl", "plain"], "env": {"API_TOKEN": "abc", "INFONCE_TEMPERATURE": 0.1},
              "hub_model_id": "hf_short"}
    assert redact_mapping(record) == {
        "include_tokens_per_second": True,  # a boolean is never a secret
        "dataset": [f"/data/{REDACTED}.jsonl", "plain"],
        "env": {"INFONCE_TEMPERATURE": 0.1},
        "hub_model_id": "hf_short",  # too short to be a token
    }
