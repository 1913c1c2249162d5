"""Publish an exported model folder to the Hugging Face Hub (``st-qwen3emb push``).

``huggingface_hub`` does the work (``create_repo``, ``create_branch``, ``upload_folder``); this module adds what
it lacks for a safe one-command publish:

- a refusal, before any network call, of a folder that plain ``SentenceTransformer(path)`` would not load (modules,
  configs, weights, checked from the files so it stays cheap for big models; a module that needs no files, such as
  the official Qwen3-Embedding ``2_Normalize``, needs no folder), that has no parsable model card, whose LoRA adapter
  names a local base model (it would load nowhere else; ``base_model_id`` records a Hub id in the uploaded copy), or
  whose files hold what looks like a Hugging Face token;
- retries with exponential backoff around each Hub call on transient failures (connection errors, timeouts, 408,
  429, 5xx) — ``huggingface_hub`` retries its file transfers but not its API calls (create repo, commit);
- a failure report that says which steps finished and which files were and were not uploaded. The local folder is
  only ever read.

The token comes from ``token=``, ``HF_TOKEN`` or the cached login (``huggingface_hub.get_token``); it is handed to
``HfApi`` and never printed, logged or written anywhere.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from st_qwen3emb import commands
from st_qwen3emb.model_card import CARD_FILENAME, CardInputError, is_hub_id, read_json
from st_qwen3emb.redaction import find_token

logger = logging.getLogger(__name__)

MAX_TRIES = 5
BASE_DELAY_S = 1.0  # waits 1, 2, 4, 8 s between the tries
MAX_DELAY_S = 30.0
RETRY_STATUS_CODES = (408, 429)  # plus every 5xx
_WEIGHT_PATTERNS = ("model*.safetensors", "adapter_model.safetensors", "pytorch_model*.bin", "adapter_model.bin")
ADAPTER_CONFIG = "adapter_config.json"

T = TypeVar("T")


class PushRefused(ValueError):
    """The folder is not fit to publish (not a sentence-transformers model, or no card); nothing was sent."""


class PushError(RuntimeError):
    """The push failed; the message says which steps finished and what was and was not uploaded."""


@dataclass
class PushResult:
    repo_id: str
    revision: str | None
    files: list[tuple[str, int]]
    dry_run: bool
    commit_url: str | None = None
    pr_url: str | None = None
    steps: list[str] = field(default_factory=list)


# --- the folder -------------------------------------------------------------------------------------
def _is_published(relative: Path) -> bool:
    # Hidden files and folders (.git, .cache, a card's .tmp) and caches are local state, not part of the model.
    return not any(part.startswith(".") or part == "__pycache__" for part in relative.parts)


def files_to_upload(model_dir: Path) -> list[tuple[str, int]]:
    """(path relative to the folder, size in bytes) of every file that goes to the Hub, sorted."""
    found = []
    for path in sorted(model_dir.rglob("*")):
        relative = path.relative_to(model_dir)
        if path.is_file() and _is_published(relative):
            found.append((relative.as_posix(), path.stat().st_size))
    return found


def _load_json(path: Path, what: str) -> Any:
    try:
        data = read_json(path)
    except CardInputError as err:
        raise PushRefused(str(err)) from None
    if data is None:
        raise PushRefused(f"{path.parent}: {path.name} is missing ({what})")
    return data


def _why_not_without_folder(model_dir: Path, entry: dict) -> str | None:
    """None when sentence-transformers loads this module with no folder of its own (``Normalize`` has no files);
    otherwise why not. Only sentence-transformers' own classes are tried: importing another class would run code
    that the folder names."""
    type_ref = str(entry["type"])
    if not type_ref.startswith("sentence_transformers."):
        return "a module outside sentence-transformers needs its folder"
    from sentence_transformers.util import import_from_string

    try:
        import_from_string(type_ref).load(str(model_dir), subfolder=str(entry.get("path", "")), local_files_only=True)
    except Exception as err:  # whatever stops sentence-transformers stops the push
        return f"{type(err).__name__}: {err}"
    return None


def transformer_folders(model_dir: Path) -> list[Path]:
    """The folders of the Transformer modules listed in ``modules.json`` (where weights and adapters live)."""
    modules = read_json(model_dir / "modules.json") or []
    return [model_dir / str(entry.get("path", "")) for entry in modules
            if isinstance(entry, dict) and str(entry.get("type", "")).endswith("Transformer")]


def check_model_folder(model_dir: Path) -> None:
    """Refuse a folder plain ``SentenceTransformer(path)`` could not load, or one without a model card.

    The check reads the files sentence-transformers reads (modules.json, each module's folder, the transformer's
    config and weights) instead of loading the model, so it costs the same for a 0.6B and an 8B model. A module
    whose folder is absent is accepted when its class loads without one, as sentence-transformers does.
    """
    if not model_dir.is_dir():
        raise PushRefused(f"{model_dir}: no such folder")
    modules = _load_json(model_dir / "modules.json", "not a sentence-transformers folder")
    if not isinstance(modules, list) or not modules:
        raise PushRefused(f"{model_dir / 'modules.json'}: must be a non-empty list of modules")
    try:
        read_json(model_dir / "config_sentence_transformers.json")  # optional, as for sentence-transformers
    except CardInputError as err:
        raise PushRefused(str(err)) from None
    transformer_seen = False
    for number, entry in enumerate(modules, start=1):
        if not isinstance(entry, dict) or not entry.get("type"):
            raise PushRefused(f"{model_dir / 'modules.json'}, module {number}: field 'type' is missing")
        sub = model_dir / str(entry.get("path", ""))
        if not sub.is_dir():
            reason = _why_not_without_folder(model_dir, entry)
            if reason is not None:
                raise PushRefused(f"{model_dir / 'modules.json'}, module {number}: folder {sub} is missing ({reason})")
            continue
        if str(entry["type"]).endswith("Transformer"):
            transformer_seen = True
            if not (sub / "config.json").is_file() and not (sub / "adapter_config.json").is_file():
                raise PushRefused(f"{sub}: no config.json or adapter_config.json for the transformer module")
            if not any(any(sub.glob(pattern)) for pattern in _WEIGHT_PATTERNS):
                raise PushRefused(f"{sub}: no model weights (model.safetensors or an adapter)")
    if not transformer_seen:
        raise PushRefused(f"{model_dir / 'modules.json'}: no Transformer module")
    card = model_dir / CARD_FILENAME
    if not card.is_file():
        raise PushRefused(f"{model_dir}: no model card ({CARD_FILENAME}); write one with: " + commands.write_card(model_dir))
    from huggingface_hub import ModelCard

    try:
        data = ModelCard.load(card).data
    except Exception as err:  # any parse failure means the Hub would show a broken card
        raise PushRefused(f"{card}: the model card does not parse ({err})") from None
    if not data.to_dict():
        raise PushRefused(f"{card}: the model card has no metadata (YAML front matter)")


def adapter_bases(model_dir: Path) -> list[tuple[Path, str | None]]:
    """(adapter_config.json, its ``base_model_name_or_path``) of every LoRA adapter in the folder."""
    found = []
    for folder in transformer_folders(model_dir):
        config = _load_json(folder / ADAPTER_CONFIG, "LoRA adapter") if (folder / ADAPTER_CONFIG).is_file() else None
        if isinstance(config, dict):
            found.append((folder / ADAPTER_CONFIG, config.get("base_model_name_or_path")))
    return found


def check_adapter_base(model_dir: Path, repo_id: str, base_model_id: str | None, *, dry_run: bool = False) -> list[Path]:
    """The adapter configs to rewrite with ``base_model_id``; refuses an adapter whose base is a local path.

    Such an adapter loads only on this machine: ``SentenceTransformer('user/model')`` elsewhere would look for the
    base model at that path.
    """
    adapters = adapter_bases(model_dir)
    if base_model_id is not None:
        if not is_hub_id(base_model_id):
            raise PushRefused(f"--base_model_id {base_model_id!r} is not a Hub id ('owner/name')")
        if not adapters:
            raise PushRefused(f"--base_model_id applies to a LoRA adapter folder; {model_dir} has no {ADAPTER_CONFIG}")
        return [path for path, _ in adapters]
    local = [(path, base) for path, base in adapters if not (base and is_hub_id(base))]
    if local:
        path, base = local[0]
        merge_and_push, with_base = commands.push_lora_hints(model_dir, repo_id, dry_run=dry_run)
        raise PushRefused(
            f"{path}: the LoRA adapter's base model is {base!r}, a local path, so the pushed model would load nowhere "
            "else. Either merge the adapter and push the standalone model:\n"
            + "".join(f"  {line}\n" for line in merge_and_push)
            + "or push the adapter naming its base model's Hub id (written into the uploaded adapter_config.json; "
            f"this folder is not changed):\n  {with_base}"
        )
    return []


def check_no_token(model_dir: Path, files: list[tuple[str, int]]) -> None:
    """Refuse a folder whose files hold what looks like a Hugging Face token (``hf_...``)."""
    leaking = [name for name, _ in files if find_token(model_dir / name)]
    if leaking:
        raise PushRefused(
            f"{model_dir}: {', '.join(leaking)} hold(s) what looks like a Hugging Face token (hf_...); remove it "
            "(and revoke the token if it was ever shared) before publishing"
        )


def _staged_copy(model_dir: Path, files: list[tuple[str, int]], rewrite: list[Path], base_model_id: str) -> Path:
    """A temporary folder of links to the files, with the adapter configs naming ``base_model_id`` and the card's
    ``base_model`` set to it; the user's folder is only read."""
    staged = Path(tempfile.mkdtemp(prefix="st-qwen3emb-push-"))
    rewritten = {path.resolve() for path in rewrite}
    for name, _ in files:
        source, target = (model_dir / name).resolve(), staged / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source in rewritten:
            config = json.loads(source.read_text(encoding="utf-8"))
            config["base_model_name_or_path"] = base_model_id
            target.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        elif name == CARD_FILENAME:
            from huggingface_hub import ModelCard

            card = ModelCard.load(source)
            card.data.base_model = base_model_id
            target.write_text(str(card), encoding="utf-8")
        else:
            os.symlink(source, target)
    return staged


# --- retries ----------------------------------------------------------------------------------------
def is_transient(err: BaseException) -> bool:
    """Whether a Hub call failed in a way worth retrying (network trouble, rate limit, server error)."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(err, HfHubHTTPError):
        status = getattr(getattr(err, "response", None), "status_code", None)
        return isinstance(status, int) and (status in RETRY_STATUS_CODES or 500 <= status < 600)
    return isinstance(err, (httpx2.TransportError, ConnectionError, TimeoutError))


def with_retries(call: Callable[[], T], what: str, *, sleep: Callable[[float], None] | None = None) -> T:
    """``call()``, retried on transient errors with exponential backoff, at most ``MAX_TRIES`` times."""
    delay = BASE_DELAY_S
    for attempt in range(1, MAX_TRIES + 1):
        try:
            return call()
        except Exception as err:
            if attempt == MAX_TRIES or not is_transient(err):
                raise
            logger.warning("%s failed (%s: %s); retry %d/%d in %.1f s", what, type(err).__name__, err, attempt,
                           MAX_TRIES - 1, delay)
            (sleep or time.sleep)(delay)
            delay = min(delay * 2, MAX_DELAY_S)
    raise AssertionError("unreachable")  # the loop returns or raises


# --- push -------------------------------------------------------------------------------------------
def describe_files(files: list[tuple[str, int]]) -> str:
    total = sum(size for _, size in files)
    return f"{len(files)} files, {total / 1e6:.1f} MB"


def push_to_hub(
    model_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    commit_message: str | None = None,
    dry_run: bool = False,
    token: str | None = None,
    base_model_id: str | None = None,
) -> PushResult:
    """Upload an exported sentence-transformers folder to ``repo_id`` on the Hub.

    Creates the repository when needed (``exist_ok``) and the branch ``revision`` when it does not exist yet, then
    uploads the folder in one commit (or one pull request with ``create_pr``). ``dry_run`` checks the folder and
    returns the files that would go, without any network call or token. ``base_model_id``: for a LoRA adapter
    folder, the base model's Hub id, written into the uploaded ``adapter_config.json`` (and the card's
    ``base_model``) in place of a local path; the folder itself is not changed.

    Raises:
        PushRefused: the folder is not a loadable sentence-transformers model, has no card, holds a LoRA adapter on
            a local base model (without ``base_model_id``), or holds what looks like a Hugging Face token.
        PushError: a Hub step failed (after retries); the message says what was and was not uploaded.
    """
    folder = Path(model_dir)
    if not repo_id or repo_id.count("/") > 1 or repo_id.startswith("/") or repo_id.endswith("/"):
        raise PushRefused(f"repo_id {repo_id!r} must look like 'user/name' or 'name'")
    check_model_folder(folder)
    rewrite = check_adapter_base(folder, repo_id, base_model_id, dry_run=dry_run)
    files = files_to_upload(folder)
    check_no_token(folder, files)
    result = PushResult(repo_id=repo_id, revision=revision, files=files, dry_run=dry_run)
    if dry_run:
        return result
    if not rewrite:
        return _upload(folder, folder, files, result, private=private, revision=revision, create_pr=create_pr,
                       commit_message=commit_message, token=token)
    staged = _staged_copy(folder, files, rewrite, base_model_id or "")
    try:
        return _upload(folder, staged, files, result, private=private, revision=revision, create_pr=create_pr,
                       commit_message=commit_message, token=token)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def _upload(
    folder: Path,
    source: Path,
    files: list[tuple[str, int]],
    result: PushResult,
    *,
    private: bool,
    revision: str | None,
    create_pr: bool,
    commit_message: str | None,
    token: str | None,
) -> PushResult:
    """Create the repository (and branch) and upload ``source``, the folder or its staged copy, in one commit."""
    repo_id = result.repo_id

    from huggingface_hub import HfApi, get_token

    token = token or get_token()
    if not token:
        raise PushRefused("no Hugging Face token: set HF_TOKEN or run 'hf auth login' first")
    api = HfApi(token=token)
    step = "create the repository"
    try:
        with_retries(lambda: api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model"), step)
        result.steps.append(f"repository {repo_id} exists")
        if revision and revision != "main":
            step = f"create the branch {revision!r}"
            with_retries(lambda: api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model"), step)
            result.steps.append(f"branch {revision} exists")
        step = "upload the folder" + (" as a pull request" if create_pr else "")
        commit = with_retries(
            lambda: api.upload_folder(
                repo_id=repo_id,
                folder_path=source,
                repo_type="model",
                revision=revision,
                create_pr=create_pr,
                commit_message=commit_message or f"Upload {folder.resolve().name} with st-qwen3emb",
                allow_patterns=[glob.escape(name) for name, _ in files],
            ),
            step,
        )
    except Exception as err:
        done = "; ".join(result.steps) if result.steps else "nothing"
        raise PushError(
            f"push of {folder} to {repo_id} failed while trying to {step}: {type(err).__name__}: {err}\n"
            f"done before the failure: {done}.\n"
            f"not uploaded: all {describe_files(files)} (a Hub commit is all-or-nothing, and none was made).\n"
            f"The local folder was not changed; run the same command again to retry."
        ) from err
    result.steps.append("uploaded " + describe_files(files))
    result.commit_url = getattr(commit, "commit_url", None)
    result.pr_url = getattr(commit, "pr_url", None)
    return result
