"""Run mteb with the official Qwen3 protocol, under the evaluated model's own name and revision.

- Prompts go through mteb's own mechanism: the ``model_prompts`` table of its SentenceTransformer wrapper,
  whose names mteb resolves as ``{task}-{side}``, ``{task}``, ``{type}-{side}``, ``{type}``, ``{side}``
  (``mteb.models.abs_encoder.get_prompt_name``). The table comes from ``instructions.mteb_prompt_table``.
- The model's name and revision are set explicitly: mteb otherwise names a sentence-transformers model after
  ``model_card_data.base_model``, which files a fine-tuned model's results under its base model and, with
  a cache, serves it the base model's scores. A local folder is named ``local/<folder>`` with a hash of its
  files as revision; results are recomputed unless ``reuse_results`` is asked for.
- Results are written in mteb's layout (``<output_folder>/results/<name>/<revision>/<task>.json``) and as
  one contract-7 summary (``<output_folder>/summary.json`` unless told otherwise).

mteb is imported only inside these functions: it takes seconds to import.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from st_qwen3emb import protocol
from st_qwen3emb.evaluation.local_tasks import is_local_task, local_reranking_task, local_retrieval_task, local_sts_task
from st_qwen3emb.evaluation.measure import measure_encoding
from st_qwen3emb.evaluation.summary import result_entry, write_summary

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

SUMMARY_NAME = "summary.json"
_MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model")


class UnknownTaskError(ValueError):
    """A task or benchmark name mteb does not know; the message lists the closest names."""


class TaskDataUnavailableError(RuntimeError):
    """A task whose data cannot be loaded (typically: it needs the Hub and we are offline)."""


# --- tasks --------------------------------------------------------------------------------------
def _close_matches(name: str, candidates: list[str], n: int = 5) -> list[str]:
    by_lower = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.5)
    return [by_lower[c] for c in close]


def _unknown(kind: str, name: str, candidates: list[str]) -> UnknownTaskError:
    close = _close_matches(name, candidates)
    hint = f" Close matches: {', '.join(close)}." if close else ""
    return UnknownTaskError(f"unknown mteb {kind} {name!r}.{hint}")


def resolve_tasks(
    task_names: list[str] | None = None,
    *,
    benchmark: str | None = None,
    local_sts: list[str] | None = None,
    local_retrieval: list[str] | None = None,
    local_reranking: list[str] | None = None,
    split: str = "test",
) -> list[Any]:
    """mteb task objects for the names, the benchmark and the local files, in that order."""
    tasks: list[Any] = []
    if task_names or benchmark:
        import mteb

        all_names = sorted({t.metadata.name for t in mteb.get_tasks()})
        for name in task_names or []:
            try:
                tasks.append(mteb.get_task(name))
            except KeyError:
                raise _unknown("task", name, all_names) from None
        if benchmark:
            try:
                tasks.extend(mteb.get_benchmark(benchmark).tasks)
            except KeyError:
                raise _unknown("benchmark", benchmark, [b.name for b in mteb.get_benchmarks()]) from None
    tasks += [local_sts_task(path, split=split) for path in local_sts or []]
    tasks += [local_retrieval_task(path, split=split) for path in local_retrieval or []]
    tasks += [local_reranking_task(path, split=split) for path in local_reranking or []]
    if not tasks:
        raise ValueError(
            "no task given: pass --tasks, --benchmark, --local_sts, --local_retrieval or --local_reranking"
        )
    names = [t.metadata.name for t in tasks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"task names given twice: {', '.join(duplicates)}")
    return tasks


def _data_unavailable(task: Any, err: BaseException) -> TaskDataUnavailableError:
    from huggingface_hub import constants

    dataset = task.metadata.dataset
    offline = " (HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else ""
    return TaskDataUnavailableError(
        f"mteb task {task.metadata.name!r} needs the dataset {dataset.get('path')!r} "
        f"(revision {dataset.get('revision')}) from the Hugging Face Hub, which cannot be reached{offline} "
        "and is not in the local cache. Run it once online to cache it, or evaluate local files "
        f"with --local_sts / --local_retrieval / --local_reranking. ({type(err).__name__}: {err})"
    )


def _dataset_reachable(task: Any) -> bool:
    """A cheap check: the dataset's snapshot is in the Hub cache (offline) or the Hub answers for it (online)."""
    from huggingface_hub import HfApi, constants, snapshot_download

    dataset = task.metadata.dataset
    try:
        if constants.HF_HUB_OFFLINE:
            snapshot_download(
                dataset["path"], repo_type="dataset", revision=dataset.get("revision"), local_files_only=True
            )
        else:
            HfApi().dataset_info(dataset["path"], revision=dataset.get("revision"))
    except Exception:  # any failure only means "not sure": the caller then tries to load the data
        return False
    return True


def ensure_task_data(tasks: list[Any]) -> None:
    """Fail now, before any model runs, for a task whose data neither the Hub nor the local cache can give.

    Registered tasks are checked cheaply (a whole benchmark's corpora are not loaded up front); when the check
    is inconclusive the data is loaded, and a failure becomes ``TaskDataUnavailableError``.
    """
    for task in tasks:
        if is_local_task(task) or task.data_loaded or _dataset_reachable(task):
            continue
        try:
            task.load_data()
        except (ConnectionError, OSError) as err:
            raise _data_unavailable(task, err) from err


# --- model identity -----------------------------------------------------------------------------
def _folder_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in _MODEL_FILE_SUFFIXES):
        digest.update(str(path.relative_to(folder)).encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()[:12]


def model_identity(
    model_id: str, model: SentenceTransformer | None = None, revision: str | None = None
) -> tuple[str, str]:
    """(name, revision) under which mteb files this model's results; never the base model's.

    A local folder: ``local/<folder name>`` and a hash of its files (so a retrained folder gets new results).
    A Hub id: the id and the given revision, else the snapshot commit it was loaded from, else ``main``.
    """
    from st_qwen3emb.evaluation.sts import model_display_name

    path = Path(os.path.expanduser(model_id))
    if path.exists():
        name = re.sub(r"[^A-Za-z0-9._-]+", "__", model_display_name(model_id)) or "model"
        return f"local/{name}", revision or f"sha256-{_folder_hash(path.resolve())}"
    if revision:
        return model_id, revision
    snapshot = None
    if model is not None:
        config = getattr(getattr(model[0], "model", None), "config", None)
        match = re.search(r"snapshots/([0-9a-f]{40})", str(getattr(config, "_name_or_path", "")))
        snapshot = match.group(1) if match else None
    name = model_id if "/" in model_id else f"hub/{model_id}"
    return name, snapshot or "main"


# --- running ------------------------------------------------------------------------------------
def _prompt_side(task_type: str) -> Any:
    from mteb.types import PromptType

    return PromptType.query if task_type in protocol.ASYMMETRIC_TASK_TYPES else None


def _numeric(scores: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in scores.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def run_mteb(
    model: str | SentenceTransformer,
    tasks: list[Any],
    *,
    output_folder: str | Path = "mteb_results",
    model_id: str | None = None,
    revision: str | None = None,
    instruction: str | None = None,
    no_instruction: bool = False,
    batch_size: int = 32,
    device: str | None = None,
    reuse_results: bool = False,
    show_progress_bar: bool = True,
    summary_path: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Evaluate ``model`` (an id/path, or a loaded model with ``model_id``) on ``tasks``; returns the summary entries."""
    from st_qwen3emb.evaluation.instructions import mteb_prompt_table
    from st_qwen3emb.model import load_model

    if isinstance(model, str):
        model_id = model_id or model
        ensure_task_data(tasks)  # fail on unreachable data before paying for the model
        model = load_model(model_id, device=device, revision=revision)
    else:
        if model_id is None:
            raise ValueError("model_id is required when a loaded model is given")
        ensure_task_data(tasks)

    from mteb.cache import ResultCache
    from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper

    local_names = frozenset(t.metadata.name for t in tasks if is_local_task(t))
    table = mteb_prompt_table(
        model, tasks, instruction=instruction, no_instruction=no_instruction, local_task_names=local_names
    )
    saved_prompts = dict(model.prompts)
    with warnings.catch_warnings():
        # mteb warns that the table replaces the model's prompts: that is the point (restored below).
        warnings.simplefilter("ignore", UserWarning)
        logging.getLogger("mteb.models.sentence_transformer_wrapper").setLevel(logging.ERROR)
        wrapper = SentenceTransformerEncoderWrapper(model, model_prompts=table.prompts)
    name, model_revision = model_identity(model_id, model, revision)
    wrapper.mteb_model_meta = wrapper.mteb_model_meta.model_copy(update={"name": name, "revision": model_revision})
    output_folder = Path(output_folder)
    cache = ResultCache(cache_path=output_folder)
    try:
        entries = _evaluate_tasks(
            wrapper,
            model,
            tasks,
            table,
            cache,
            model_id,
            name,
            model_revision,
            reuse_results=reuse_results,
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
        )
    finally:
        model.prompts = saved_prompts
    write_summary(entries, Path(summary_path) if summary_path else output_folder / SUMMARY_NAME)
    return entries


def _evaluate_tasks(
    wrapper: Any,
    model: Any,
    tasks: list[Any],
    table: Any,
    cache: Any,
    model_id: str,
    name: str,
    model_revision: str,
    *,
    reuse_results: bool,
    batch_size: int,
    show_progress_bar: bool,
) -> list[dict[str, Any]]:
    import mteb

    from st_qwen3emb.evaluation.sts import model_display_name

    entries = []
    for task in tasks:
        metadata = task.metadata
        with measure_encoding(model) as measured:
            try:
                result = mteb.evaluate(
                    wrapper,
                    task,
                    cache=cache,
                    overwrite_strategy="only-missing" if reuse_results else "always",
                    encode_kwargs={"batch_size": batch_size, "show_progress_bar": show_progress_bar},
                    show_progress_bar=show_progress_bar,
                )
            except ConnectionError as err:  # data that passed the early check but could not be downloaded
                raise _data_unavailable(task, err) from err
        if result.exceptions:
            raise RuntimeError(f"mteb task {metadata.name!r} failed: {result.exceptions[0]}")
        choice = table.lookup(metadata, _prompt_side(metadata.type))
        for task_result in result.task_results:
            for split, per_subset in task_result.scores.items():
                for scores in per_subset:
                    metrics = _numeric(scores)
                    subset = scores.get("hf_subset", "default")
                    entries.append(
                        result_entry(
                            model=model_id,
                            model_name=model_display_name(model_id),
                            task=metadata.name,
                            task_type=metadata.type,
                            dataset={
                                "name": metadata.name,
                                "type": metadata.dataset.get("path"),
                                "split": split,
                                "config": None if subset == "default" else subset,
                            },
                            instruction=choice.instruction,
                            prompt=choice.prompt,
                            main_metric=metadata.main_score,
                            metrics={**metrics, metadata.main_score: metrics["main_score"]},
                            num_texts=measured.num_texts,
                            seconds=measured.seconds,
                            mteb_model_name=name,
                            mteb_model_revision=model_revision,
                            dataset_revision=task_result.dataset_revision,
                        )
                    )
    return entries
