"""``st-qwen3emb push`` without the network.

How the Hub is replaced: ``huggingface_hub.HfApi`` is patched at its boundary — its ``create_repo``,
``create_branch`` and ``upload_folder`` methods are replaced (``autospec=True``, so every call must match the real
signatures) by a recording fake that can fail its first calls with a 503 ``HfHubHTTPError`` or an
``httpx2.ConnectError``. No socket is opened. Covered: create, upload, branch, pull request, retry with backoff,
failure report, refusals, dry run, and that the token is never printed, logged or written.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import httpx2
import pytest
from _link_copy import link_copy
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from st_qwen3emb import hub
from st_qwen3emb.cli import push as push_cli
from st_qwen3emb.model_card import write_model_card

TOKEN = "hf_TESTtokenDoNotLeak0123456789abcdef"


@pytest.fixture(scope="module")
def carded_model(tmp_path_factory, tiny_qwen_st) -> Path:
    model = link_copy(tiny_qwen_st, tmp_path_factory.mktemp("push") / "model")
    write_model_card(model, base_model="Qwen/Qwen3-Embedding-0.6B")
    return model


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _http_error(status: int) -> HfHubHTTPError:
    request = httpx2.Request("POST", "https://hub.invalid/api/repos/create")
    return HfHubHTTPError(f"{status} error", response=httpx2.Response(status, request=request))


class FakeHub:
    """Records the calls the real HfApi would make; ``failures[name]`` are raised by the first calls to ``name``."""

    def __init__(self, failures: dict[str, list[BaseException]] | None = None):
        self.calls: list[tuple[str, dict]] = []
        self.tokens: list[str | None] = []
        self.failures = {k: list(v) for k, v in (failures or {}).items()}

    def _record(self, name: str, api: HfApi, kwargs: dict):
        self.calls.append((name, kwargs))
        self.tokens.append(api.token)
        if self.failures.get(name):
            raise self.failures[name].pop(0)

    def create_repo(self, api, repo_id, **kwargs):
        self._record("create_repo", api, {"repo_id": repo_id, **kwargs})
        return SimpleNamespace(repo_id=repo_id)

    def create_branch(self, api, repo_id, **kwargs):
        self._record("create_branch", api, {"repo_id": repo_id, **kwargs})

    def upload_folder(self, api, **kwargs):
        self._record("upload_folder", api, kwargs)
        pr = "https://hub.invalid/me/model/discussions/1" if kwargs.get("create_pr") else None
        return SimpleNamespace(commit_url="https://hub.invalid/me/model/commit/abc", pr_url=pr)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def fake_hub(monkeypatch):
    monkeypatch.setattr(hub, "BASE_DELAY_S", 0.0)
    monkeypatch.setenv("HF_TOKEN", TOKEN)

    def install(failures=None) -> FakeHub:
        mock.patch.stopall()  # a second install replaces the first fake
        fake = FakeHub(failures)
        for name in ("create_repo", "create_branch", "upload_folder"):
            patcher = mock.patch.object(HfApi, name, autospec=True, side_effect=getattr(fake, name))
            patcher.start()
        return fake

    yield install
    mock.patch.stopall()


def test_dry_run_lists_files_and_sizes_without_network(carded_model, fake_hub, capsys):
    fake = fake_hub()
    assert push_cli.main(["--model_dir", str(carded_model), "--repo_id", "me/model", "--dry_run"]) == 0
    out = capsys.readouterr().out
    assert fake.calls == []
    size = (carded_model / "model.safetensors").stat().st_size
    assert f"{size:,d}  model.safetensors" in out
    assert "README.md" in out and "modules.json" in out and "1_Pooling/config.json" in out


def test_push_creates_repo_and_uploads_the_folder(carded_model, fake_hub):
    fake = fake_hub()
    before = _snapshot(carded_model)
    result = hub.push_to_hub(carded_model, "me/model", private=True, commit_message="first")
    assert fake.names() == ["create_repo", "upload_folder"]
    create = fake.calls[0][1]
    assert create["exist_ok"] is True and create["private"] is True
    upload = fake.calls[1][1]
    assert Path(upload["folder_path"]) == carded_model
    assert upload["repo_id"] == "me/model" and upload["commit_message"] == "first"
    assert upload["create_pr"] is False and upload["revision"] is None
    assert set(upload["allow_patterns"]) == {name for name, _ in result.files}
    assert result.commit_url and result.pr_url is None
    assert fake.tokens == [TOKEN, TOKEN]  # the token reached HfApi from HF_TOKEN
    assert _snapshot(carded_model) == before


def test_new_branch_is_created_and_pull_request_opened(carded_model, fake_hub, capsys):
    fake = fake_hub()
    code = push_cli.main(["--model_dir", str(carded_model), "--repo_id", "me/model", "--revision", "v2", "--create_pr"])
    assert code == 0
    assert fake.names() == ["create_repo", "create_branch", "upload_folder"]
    assert fake.calls[1][1]["branch"] == "v2" and fake.calls[1][1]["exist_ok"] is True
    upload = fake.calls[2][1]
    assert upload["create_pr"] is True and upload["revision"] == "v2"
    assert "pull request: https://hub.invalid/me/model/discussions/1" in capsys.readouterr().out


def test_transient_errors_are_retried_with_backoff(carded_model, fake_hub, monkeypatch):
    fake = fake_hub({
        "create_repo": [_http_error(503), httpx2.ConnectError("connection refused")],
        "upload_folder": [_http_error(429)],
    })
    waits: list[float] = []
    monkeypatch.setattr(hub, "BASE_DELAY_S", 0.5)
    monkeypatch.setattr(hub.time, "sleep", waits.append)
    result = hub.push_to_hub(carded_model, "me/model")
    assert fake.names() == ["create_repo"] * 3 + ["upload_folder"] * 2
    assert waits == [0.5, 1.0, 0.5]  # exponential per call
    assert result.commit_url


def test_failure_reports_what_was_and_was_not_uploaded(carded_model, fake_hub):
    fake = fake_hub({"upload_folder": [_http_error(503)] * hub.MAX_TRIES})
    before = _snapshot(carded_model)
    with pytest.raises(hub.PushError) as info:
        hub.push_to_hub(carded_model, "me/model")
    message = str(info.value)
    assert fake.names().count("upload_folder") == hub.MAX_TRIES  # bounded tries
    assert "repository me/model exists" in message
    files = len(hub.files_to_upload(carded_model))
    assert f"not uploaded: all {files} files" in message
    assert "local folder was not changed" in message
    assert _snapshot(carded_model) == before


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (_http_error(500), True), (_http_error(502), True), (_http_error(504), True), (_http_error(429), True),
        (_http_error(408), True), (httpx2.ReadTimeout("slow"), True), (ConnectionResetError(), True),
        (_http_error(400), False), (_http_error(401), False), (_http_error(404), False), (ValueError("bad"), False),
    ],
)
def test_which_errors_are_transient(error, transient):
    assert hub.is_transient(error) is transient


def test_permanent_errors_are_not_retried(carded_model, fake_hub, capsys):
    fake = fake_hub({"create_repo": [_http_error(401)]})
    assert push_cli.main(["--model_dir", str(carded_model), "--repo_id", "me/model"]) == 1
    assert fake.names() == ["create_repo"]
    err = capsys.readouterr().err
    assert "create the repository" in err and "done before the failure: nothing" in err


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        (lambda m: (m / "README.md").unlink(), "no model card"),
        (lambda m: (m / "README.md").write_text("no front matter at all\n"), "no metadata"),
        (lambda m: (m / "modules.json").unlink(), "modules.json is missing"),
        (lambda m: (m / "model.safetensors").unlink(), "no model weights"),
        (lambda m: (m / "config.json").unlink(), "no config.json"),
        (lambda m: shutil.rmtree(m / "1_Pooling"), "1_Pooling is missing"),
    ],
)
def test_refuses_a_folder_that_is_not_a_carded_model(tmp_path, carded_model, fake_hub, breakage, reason, capsys):
    fake = fake_hub()
    model = link_copy(carded_model, tmp_path / "broken")
    breakage(model)
    with pytest.raises(hub.PushRefused, match=reason):
        hub.push_to_hub(model, "me/model")
    assert push_cli.main(["--model_dir", str(model), "--repo_id", "me/model", "--dry_run"]) == 2
    assert "refused" in capsys.readouterr().err
    assert fake.calls == []


def test_refuses_without_a_token(carded_model, fake_hub, monkeypatch):
    fake = fake_hub()
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(hub.PushRefused, match="no Hugging Face token"):
        hub.push_to_hub(carded_model, "me/model")
    assert fake.calls == []


def test_token_is_never_printed_logged_or_written(carded_model, fake_hub, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    before = _snapshot(carded_model)
    fake_hub({"create_repo": [_http_error(503)], "upload_folder": [_http_error(500)] * hub.MAX_TRIES})
    assert push_cli.main(["--model_dir", str(carded_model), "--repo_id", "me/model", "--create_pr"]) == 1
    fake_hub()
    assert push_cli.main(["--model_dir", str(carded_model), "--repo_id", "me/model"]) == 0
    assert push_cli.main(["--model_dir", str(carded_model), "--repo_id", "me/model", "--dry_run"]) == 0
    captured = capsys.readouterr()
    assert caplog.records, "the retries should have been logged"
    for text in (captured.out, captured.err, caplog.text):
        assert TOKEN not in text
    for path in carded_model.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    assert _snapshot(carded_model) == before


# --- issue 14.9: a LoRA adapter on a local base model ---------------------------------------------------------------
@pytest.fixture(scope="module")
def local_base_adapter(tmp_path_factory, tiny_qwen_st) -> Path:
    """A LoRA adapter folder as a LoRA run's final/ holds it: adapter_config.json names a local base path."""
    from st_qwen3emb import load_model
    from st_qwen3emb.lora import add_lora

    folder = tmp_path_factory.mktemp("lora") / "adapter"
    add_lora(load_model(str(tiny_qwen_st)), rank=4, alpha=8).save(str(folder))
    write_model_card(folder)
    return folder


def _printed_commands(message: str) -> list[list[str]]:
    import shlex

    return [shlex.split(line.strip()) for line in message.splitlines() if line.strip().startswith("st-qwen3emb ")]


def test_lora_folder_on_a_local_base_is_refused_with_commands_that_run(local_base_adapter, fake_hub, tmp_path, capsys):
    import json

    from st_qwen3emb.cli import main as cli_main

    fake = fake_hub()
    base = json.loads((local_base_adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert Path(base).is_dir()  # the precondition: a local path
    model = link_copy(local_base_adapter, tmp_path / "final")
    before = _snapshot(model)
    with pytest.raises(hub.PushRefused) as info:
        hub.push_to_hub(model, "me/model", dry_run=True)
    message = str(info.value)
    assert "local path" in message and "--base_model_id" in message
    export_cmd, push_cmd, retry_cmd = _printed_commands(message)
    assert export_cmd[:4] == ["st-qwen3emb", "export", "--adapters", str(model)]
    assert export_cmd[4:6] == ["--merge_lora", "true"]
    assert push_cli.main(["--model_dir", str(model), "--repo_id", "me/model", "--dry_run"]) == 2
    assert "st-qwen3emb export --adapters" in capsys.readouterr().err
    # the printed commands run as printed: the export merges, and the merged folder passes the push check
    assert cli_main(export_cmd[1:]) == 0
    assert cli_main([*push_cmd[1:], "--dry_run"]) == 0
    assert retry_cmd[-2:] == ["--base_model_id", "OWNER/NAME"] and retry_cmd[1] == "push"
    assert fake.calls == [] and _snapshot(model) == before


def test_base_model_id_is_recorded_in_the_uploaded_copy_only(local_base_adapter, fake_hub, monkeypatch):
    import json

    from huggingface_hub import ModelCard

    uploaded: dict[str, str] = {}

    def upload_folder(fake, api, **kwargs):  # reads the folder while it exists (a staged copy is removed after)
        folder = Path(kwargs["folder_path"])
        uploaded.update({str(p.relative_to(folder)): p.read_text(errors="replace") for p in folder.rglob("*.json")})
        uploaded["README.md"] = (folder / "README.md").read_text()
        uploaded["files"] = json.dumps(sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()))
        return SimpleNamespace(commit_url="https://hub.invalid/c", pr_url=None)

    monkeypatch.setattr(FakeHub, "upload_folder", upload_folder)
    fake_hub()
    before = _snapshot(local_base_adapter)
    result = hub.push_to_hub(local_base_adapter, "me/model", base_model_id="Qwen/Qwen3-Embedding-0.6B")
    assert result.commit_url
    assert json.loads(uploaded["adapter_config.json"])["base_model_name_or_path"] == "Qwen/Qwen3-Embedding-0.6B"
    assert ModelCard(uploaded["README.md"]).data.base_model == "Qwen/Qwen3-Embedding-0.6B"
    assert set(json.loads(uploaded["files"])) == {name for name, _ in hub.files_to_upload(local_base_adapter)}
    assert _snapshot(local_base_adapter) == before  # the user's folder is untouched


@pytest.mark.parametrize(
    ("folder", "base_model_id", "reason"),
    [("adapter", "not a/hub id", "is not a Hub id"), ("full", "Qwen/Qwen3-Embedding-0.6B", "applies to a LoRA adapter")],
)
def test_bad_base_model_id_is_refused(local_base_adapter, carded_model, fake_hub, folder, base_model_id, reason):
    fake = fake_hub()
    model = local_base_adapter if folder == "adapter" else carded_model
    with pytest.raises(hub.PushRefused, match=reason):
        hub.push_to_hub(model, "me/model", base_model_id=base_model_id)
    assert fake.calls == []


# --- issue 17.6: a folder holding a Hub token is not published -------------------------------------------------------
@pytest.mark.parametrize("where", ["README.md", "1_Pooling/notes.txt", "training_args.bin"])
def test_folder_holding_a_hub_token_is_refused(tmp_path, carded_model, fake_hub, where, capsys):
    fake = fake_hub()
    model = link_copy(carded_model, tmp_path / "leaky")
    target = model / where
    old = target.read_bytes() if target.exists() else b""
    target.write_bytes(old + b"\n--hub_token " + TOKEN.encode() + b"\n")
    assert push_cli.main(["--model_dir", str(model), "--repo_id", "me/model", "--dry_run"]) == 2
    err = capsys.readouterr().err
    assert where in err and "Hugging Face token" in err and TOKEN not in err
    assert fake.calls == []
