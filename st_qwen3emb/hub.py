"""Publish an exported model folder to the Hugging Face Hub (``st-qwen3emb push``).

``huggingface_hub`` does the work (``create_repo``, ``create_branch``, ``upload_folder``); this module adds what
it lacks for a safe one-command publish:

- a refusal, before any network call, of a folder that is not a loadable sentence-transformers model (modules,
  configs, weights, checked from the files so it stays cheap for big models) or has no parsable model card;
- retries with exponential backoff around each Hub call on transient failures (connection errors, timeouts, 408,
  429, 5xx) — ``huggingface_hub`` retries its file transfers but not its API calls (create repo, commit);
- a failure report that says which steps finished and which files were and were not uploaded. The local folder is
  only ever read.

The token comes from ``token=``, ``HF_TOKEN`` or the cached login (``huggingface_hub.get_token``); it is handed to
``HfApi`` and never printed, logged or written anywhere.
"""

from __future__ import annotations

import glob
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from st_qwen3emb.model_card import CARD_FILENAME, CardInputError, read_json

logger = logging.getLogger(__name__)

MAX_TRIES = 5
BASE_DELAY_S = 1.0  # waits 1, 2, 4, 8 s between the tries
MAX_DELAY_S = 30.0
RETRY_STATUS_CODES = (408, 429)  # plus every 5xx
_WEIGHT_PATTERNS = ("model*.safetensors", "adapter_model.safetensors", "pytorch_model*.bin", "adapter_model.bin")

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


def check_model_folder(model_dir: Path) -> None:
    """Refuse a folder sentence-transformers could not load, or one without a model card.

    The check reads the files sentence-transformers reads (modules.json, each module's folder, the transformer's
    config and weights) instead of loading the model, so it costs the same for a 0.6B and an 8B model.
    """
    if not model_dir.is_dir():
        raise PushRefused(f"{model_dir}: no such folder")
    modules = _load_json(model_dir / "modules.json", "not a sentence-transformers folder")
    if not isinstance(modules, list) or not modules:
        raise PushRefused(f"{model_dir / 'modules.json'}: must be a non-empty list of modules")
    _load_json(model_dir / "config_sentence_transformers.json", "not a sentence-transformers folder")
    transformer_seen = False
    for number, entry in enumerate(modules, start=1):
        if not isinstance(entry, dict) or not entry.get("type"):
            raise PushRefused(f"{model_dir / 'modules.json'}, module {number}: field 'type' is missing")
        sub = model_dir / str(entry.get("path", ""))
        if not sub.is_dir():
            raise PushRefused(f"{model_dir / 'modules.json'}, module {number}: folder {sub} is missing")
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
        raise PushRefused(f"{model_dir}: no model card ({CARD_FILENAME}); write one with 'st-qwen3emb card'")
    from huggingface_hub import ModelCard

    try:
        data = ModelCard.load(card).data
    except Exception as err:  # any parse failure means the Hub would show a broken card
        raise PushRefused(f"{card}: the model card does not parse ({err})") from None
    if not data.to_dict():
        raise PushRefused(f"{card}: the model card has no metadata (YAML front matter)")


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
) -> PushResult:
    """Upload an exported sentence-transformers folder to ``repo_id`` on the Hub.

    Creates the repository when needed (``exist_ok``) and the branch ``revision`` when it does not exist yet, then
    uploads the folder in one commit (or one pull request with ``create_pr``). ``dry_run`` checks the folder and
    returns the files that would go, without any network call or token.

    Raises:
        PushRefused: the folder is not a loadable sentence-transformers model or has no card.
        PushError: a Hub step failed (after retries); the message says what was and was not uploaded.
    """
    folder = Path(model_dir)
    if not repo_id or repo_id.count("/") > 1 or repo_id.startswith("/") or repo_id.endswith("/"):
        raise PushRefused(f"repo_id {repo_id!r} must look like 'user/name' or 'name'")
    check_model_folder(folder)
    files = files_to_upload(folder)
    result = PushResult(repo_id=repo_id, revision=revision, files=files, dry_run=dry_run)
    if dry_run:
        return result

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
                folder_path=folder,
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
