"""STS evaluation: Pearson and Spearman correlations for cosine, Euclidean, Manhattan and dot similarity.

The correlations come from sentence-transformers' ``EmbeddingSimilarityEvaluator``; the only addition is
the prompt (it has no prompt argument), passed to ``encode`` so the instruction reaches the tokenizer exactly
as ``encode_query`` would send it. Data: local files in the STS-B layout (``sentence1``, ``sentence2``,
``score``; TSV, CSV or JSONL; 0-5 or 0-1 scores) or Hub datasets with those columns, read by the data layer
(``st_qwen3emb.data.read_records``) as training data is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from st_qwen3emb.data.formats import STSB_MAX_SCORE  # the STS-B score scale, one home
from st_qwen3emb.evaluation.instructions import PromptChoice, sts_prompt
from st_qwen3emb.evaluation.measure import measure_encoding
from st_qwen3emb.evaluation.summary import result_entry
from st_qwen3emb.figures import save_figure

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

HUB_ALIASES = {"stsb": "sentence-transformers/stsb"}
SIMILARITIES = ("cosine", "euclidean", "manhattan", "dot")
MAIN_METRIC = "cosine_spearman"


class STSDataError(ValueError):
    """STS data that cannot be used; the message names the file (or dataset), the row and the field."""


@dataclass
class STSData:
    sentences1: list[str]
    sentences2: list[str]
    scores: list[float]  # 0..1
    name: str  # the task name in results, e.g. "stsb" or "stsb-local"
    source: str  # Hub id or local path
    split: str
    config: str | None = None

    def dataset_info(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.source, "split": self.split, "config": self.config}


# --- reading ------------------------------------------------------------------------------------
def _read(spec: str, split: str) -> tuple[list[str], list[str], list[float]]:
    """Pairs and 0..1 scores through the data layer (``st_qwen3emb.data.read_records``).

    The data layer reads every format and the Hub, scales STS-B layout TSVs (0-5) to 0..1 and names file, line and
    field in its errors; here each row must also have a second sentence and a score, and other files on the 0-5
    scale (any score above 1) are scaled too, as STS-B is.
    """
    from st_qwen3emb.data import DatasetValidationError, read_records

    try:
        records = list(read_records(spec, split=split))
    except DatasetValidationError as err:
        raise STSDataError(str(err)) from err
    if not records:
        raise STSDataError(f"{spec}: no rows")
    for record in records:
        if not record.positives:
            raise STSDataError(f"{record.where('positive')}: the second sentence is missing or empty")
        if record.label is None:
            raise STSDataError(f"{record.where('label')}: the score is missing")
        if not 0.0 <= record.label <= STSB_MAX_SCORE:
            raise STSDataError(f"{record.where('label')}: score {record.label:g} is outside 0..5")
    scores = [float(r.label) for r in records]
    if max(scores) > 1.0:  # the STS-B 0-5 scale; correlations do not change, the saved scale is 0..1
        scores = [score / STSB_MAX_SCORE for score in scores]
    return [r.anchor for r in records], [r.positives[0] for r in records], scores


def load_sts_data(spec: str, split: str = "test") -> STSData:
    """STS pairs from ``spec``, in the ``--dataset`` grammar of training (``st_qwen3emb.data.parse_dataset_spec``).

    ``stsb`` (the Hub dataset), a Hub id, a file, or a folder of split files (``<folder>/<split>.tsv``, the
    ``train.tsv``/``validation.tsv``/``test.tsv`` layout of STS-B), each with an optional ``:subset`` and ``#N``.
    """
    from st_qwen3emb.data import DatasetValidationError, parse_dataset_spec
    from st_qwen3emb.data.folders import split_file

    try:
        parsed = parse_dataset_spec(spec)
        path = Path(parsed.name)
        if parsed.is_local and path.is_dir():
            path = split_file(path, split)
    except DatasetValidationError as err:
        raise STSDataError(str(err)) from err
    config = "/".join(parsed.subsets) or None
    if parsed.is_local:
        s1, s2, scores = _read(spec, split)
        name = f"{path.parent.name}-local" if path.parent.name else "sts-local"
        return STSData(s1, s2, scores, name=name, source=str(path.resolve()), split=path.stem, config=config)
    if parsed.name.startswith((".", "/", "~")) or parsed.name.endswith((".tsv", ".csv", ".jsonl")):
        raise STSDataError(f"{parsed.name}: no such file or folder")
    repo = HUB_ALIASES.get(parsed.name, parsed.name)
    hub_spec = (f"{parsed.hub}::" if parsed.hub else "") + str(replace(parsed, name=repo))
    s1, s2, scores = _read(hub_spec, split)
    name = parsed.name if parsed.name in HUB_ALIASES else repo
    return STSData(s1, s2, scores, name=name, source=repo, split=split, config=config)


# --- evaluating ---------------------------------------------------------------------------------
def _prompted_evaluator(data: STSData, prompt: str | None, batch_size: int, show_progress_bar: bool) -> Any:
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    class PromptedSimilarityEvaluator(EmbeddingSimilarityEvaluator):
        """sentence-transformers' evaluator with a prompt on both sides (it has no prompt option)."""

        def embed_inputs(self, model, sentences, **kwargs):
            # "" rather than None: no prompt must mean none, not the model's default prompt.
            return super().embed_inputs(model, sentences, prompt=prompt or "", **kwargs)

    return PromptedSimilarityEvaluator(
        data.sentences1,
        data.sentences2,
        data.scores,
        batch_size=batch_size,
        main_similarity="cosine",
        similarity_fn_names=list(SIMILARITIES),
        name=data.name,
        show_progress_bar=show_progress_bar,
        write_csv=False,
    )


def evaluate_sts(
    model: SentenceTransformer,
    data: STSData,
    *,
    prompt: PromptChoice,
    model_id: str,
    batch_size: int = 32,
    show_progress_bar: bool = True,
) -> dict[str, Any]:
    """Evaluate ``model`` on ``data`` with ``prompt`` on both sides; returns one contract-7 result entry."""
    evaluator = _prompted_evaluator(data, prompt.prompt, batch_size, show_progress_bar)
    with measure_encoding(model) as measured:
        raw = evaluator(model)
    prefix = f"{data.name}_" if data.name else ""
    metrics = {}
    for similarity in SIMILARITIES:
        for stat in ("pearson", "spearman"):
            metrics[f"{similarity}_{stat}"] = float(raw[f"{prefix}{stat}_{similarity}"])
    return result_entry(
        model=model_id,
        model_name=model_display_name(model_id),
        task=data.name,
        task_type="STS",
        dataset=data.dataset_info(),
        instruction=prompt.instruction,
        prompt=prompt.prompt,
        main_metric=MAIN_METRIC,
        metrics=metrics,
        num_texts=measured.num_texts,
        seconds=measured.seconds,
    )


def model_display_name(model_id: str) -> str:
    """A short name for tables and charts: the Hub id, or the folder name (plus its parent for checkpoints)."""
    path = Path(os.path.expanduser(model_id))
    if not path.exists():
        return model_id
    path = path.resolve()
    generic = path.name in ("final", "model", "merged", "last-checkpoint") or path.name.startswith("checkpoint-")
    return f"{path.parent.name}/{path.name}" if generic and path.parent.name else path.name


def run_sts(
    models: list[str],
    datasets: list[str],
    *,
    split: str = "test",
    instruction: str | None = None,
    no_instruction: bool = False,
    batch_size: int = 32,
    device: str | None = None,
    show_progress_bar: bool = True,
    loaded: dict[str, SentenceTransformer] | None = None,
) -> list[dict[str, Any]]:
    """Every model on every dataset; ``loaded`` maps model ids to models already in memory (tests, notebooks)."""
    from st_qwen3emb.model import load_model

    data = [load_sts_data(spec, split) for spec in datasets]  # bad data fails before any model loads
    results = []
    for model_id in models:
        model = (loaded or {}).get(model_id) or load_model(model_id, device=device)
        prompt = sts_prompt(model, instruction=instruction, no_instruction=no_instruction)
        for item in data:
            results.append(
                evaluate_sts(
                    model,
                    item,
                    prompt=prompt,
                    model_id=model_id,
                    batch_size=batch_size,
                    show_progress_bar=show_progress_bar,
                )
            )
    return results


# --- reporting ----------------------------------------------------------------------------------
def format_table(results: list[dict[str, Any]]) -> str:
    """A plain-text table: one row per (model, dataset), Pearson/Spearman per similarity, and the prompt."""
    header = ["model", "dataset"] + [f"{s} {stat}" for s in SIMILARITIES for stat in ("P", "S")] + ["texts", "s"]
    rows = [header]
    for entry in results:
        rows.append(
            [entry["model_name"], entry["task"]]
            + [f"{entry['metrics'][f'{s}_{stat}']:.4f}" for s in SIMILARITIES for stat in ("pearson", "spearman")]
            + [str(entry["num_texts"]), f"{entry['seconds']:.1f}"]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines.append("")
    for entry in results:
        shown = repr(entry.get("prompt")) if entry.get("prompt") else "none"
        lines.append(f"instruction for {entry['model_name']} on {entry['task']}: {shown}")
    return "\n".join(lines)


def plot_results(results: list[dict[str, Any]], path: str | Path) -> Path:
    """A grouped bar chart of Spearman per similarity, one bar per (model, dataset); written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    path = Path(path)
    labels = [f"{r['model_name']}\n{r['task']}" for r in results]
    x = np.arange(len(SIMILARITIES))
    width = 0.8 / max(len(results), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.5 * len(SIMILARITIES) * max(len(results), 1) * 0.6), 4.5))
    for index, (label, entry) in enumerate(zip(labels, results, strict=True)):
        values = [entry["metrics"][f"{s}_spearman"] for s in SIMILARITIES]
        bars = ax.bar(x + (index - (len(results) - 1) / 2) * width, values, width, label=label)
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks(x, SIMILARITIES)
    ax.set_ylabel("Spearman correlation")
    ax.set_title("STS evaluation")
    ax.set_ylim(min(0.0, min((e["metrics"][f"{s}_spearman"] for e in results for s in SIMILARITIES), default=0)), 1.0)
    # Below the axes: inside, it would cover the bars, which all reach high.
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=min(len(results), 3))
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)
