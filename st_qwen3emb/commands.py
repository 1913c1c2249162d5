"""Every ``st-qwen3emb`` command line the project prints: next steps after training and export, the resume command
after an interrupt, and the commands named in error hints.

They are built here, and only here, from argv words joined with ``shlex.quote``, so a path with spaces or shell
characters pastes safely and each printed line is a command that runs as printed (``tests/test_printed_commands.py``
feeds every one of them to the real parser). Pure string work: no torch, no transformers.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PROGRAM = "st-qwen3emb"
# The Hub repository in a printed push command: a placeholder the user replaces; with --dry_run it runs as printed.
REPO_PLACEHOLDER = "YOUR_NAME/MODEL_NAME"
# Losses whose two sides are compared as equals: their models are evaluated on STS pairs.
_PAIR_LOSSES = ("cosine_similarity", "contrastive", "online_contrastive", "cosent", "angle")


def command(subcommand: str, args: Sequence[Any] = (), env: Mapping[str, Any] | None = None) -> str:
    """``[VAR=value ...] st-qwen3emb SUBCOMMAND ARGS`` with every word shell-quoted."""
    prefix = [f"{name}={shlex.quote(_env_word(value))}" for name, value in (env or {}).items()]
    words = [PROGRAM, *subcommand.split(), *(str(a) for a in args)]
    return " ".join(prefix + [shlex.quote(w) for w in words])


def _env_word(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- after training ---------------------------------------------------------------------------------
def sft_command(args: Mapping[str, Any], *, resume_from: str | Path | None = None) -> str:
    """The ``st-qwen3emb sft`` command of the run recorded in ``args`` (its args.json), with the loss's environment
    settings in front; with ``resume_from``, the command that continues it from that checkpoint."""
    from st_qwen3emb.config import flags_from_args_json

    words = flags_from_args_json(args)
    if resume_from is not None:
        words += ["--resume_from_checkpoint", str(resume_from)]
    env = args.get("env")
    return command("sft", words, env=env if isinstance(env, dict) else None)


def after_training(args: Mapping[str, Any], final: Path, merged: Path | None = None) -> list[tuple[str, str]]:
    """(command, what it does) to run after a training run whose model is in ``final``, in order.

    A LoRA run's ``final/`` holds an adapter: it is merged first, into ``merged`` (default ``final-merged`` next to
    it, named in the printed command), and evaluation and push use the merged folder.
    """
    task_type = str(args.get("task_type") or "embedding")
    reranker = task_type != "embedding"
    steps: list[tuple[str, str]] = []
    model = final
    if args.get("train_type") == "lora":
        model = merged or final.with_name(f"{final.name}-merged")
        export_args = ["--adapters", final, "--merge_lora", "true", "--output_dir", model]
        if reranker:
            export_args += ["--task_type", task_type]
        steps.append((command("export", export_args), "merge the LoRA adapter into a plain model folder"))
    if not reranker:
        steps.append(evaluation(args, model))
    steps.append(push_dry_run(model))
    return steps


def evaluation(args: Mapping[str, Any], model: Path) -> tuple[str, str]:
    """Evaluate ``model`` against the base model on the run's own evaluation data where it has some."""
    retrieval = list(args.get("eval_retrieval") or [])
    if "infonce" in str(args.get("loss_type") or "") and retrieval:
        folder = Path(str(args.get("run_dir") or model.parent))
        return (
            command("eval mteb", ["--model", model, "--local_retrieval", retrieval[0],
                                  "--output_folder", folder / "mteb_results"]),
            "nDCG@10 on the run's retrieval set",
        )
    models = [m for m in (args.get("model"), model) if m]
    output = Path(str(args.get("run_dir") or model.parent)) / "sts_results.json"
    dataset, what = _sts_data(args)
    who = "the base and the trained model" if len(models) > 1 else "the model"
    return command("eval sts", ["--model", *models, "--dataset", dataset, "--output", output]), f"Spearman of {who} {what}"


def _sts_data(args: Mapping[str, Any]) -> tuple[str, str]:
    """The STS data to score on, and how to say it: the run's --eval_sts set; for a pair loss its --val_dataset;
    else the test split of a local split folder it trained on (held out, and no Hub needed); else a local file it
    trained on (a check, not a held-out score); else STS-B test from the Hub."""
    from st_qwen3emb.data.spec import parse_dataset_spec

    sts = list(args.get("eval_sts") or [])
    if sts:
        return sts[0], f"on {sts[0]}"
    if args.get("loss_type") in _PAIR_LOSSES and args.get("val_dataset"):
        return str(args["val_dataset"][0]), f"on {args['val_dataset'][0]}"
    for spec in args.get("dataset") or []:
        try:
            path = Path(parse_dataset_spec(str(spec)).name).expanduser()
        except ValueError:
            continue
        if path.is_dir() and any(path.glob("test.*")):
            return str(path), f"on the test split of {path} (held out from training)"
        if path.is_file() and args.get("loss_type") in _PAIR_LOSSES:
            return str(spec), f"on the local data it trained on, {spec} (a check, not a held-out score)"
    return "stsb", "on STS-B test (needs the Hugging Face Hub)"


def push_dry_run(model_dir: Path) -> tuple[str, str]:
    return (
        command("push", ["--model_dir", model_dir, "--repo_id", REPO_PLACEHOLDER, "--dry_run"]),
        f"list what would be uploaded; then put your repository instead of {REPO_PLACEHOLDER} and drop --dry_run",
    )


def format_steps(steps: Sequence[tuple[str, str]]) -> list[str]:
    """Printed lines: each command on its own line (a shell comment after it says what it does)."""
    return [f"  {cmd}   # {what}" for cmd, what in steps]


# --- after export, in error hints ------------------------------------------------------------------------
def after_export(output: Path, task_type: str = "embedding") -> list[tuple[str, str]]:
    steps = [] if task_type != "embedding" else [evaluation({}, output)]
    return steps + [push_dry_run(output)]


def export_full_model(checkpoint: Path, output: Path) -> str:
    """Export a full fine-tuning checkpoint (no adapter to merge) to ``output``."""
    return command("export", ["--model", checkpoint, "--output_dir", output])


def write_card(model_dir: Path) -> str:
    return command("card", ["--model_dir", model_dir])


def push_lora_hints(model_dir: Path, repo_id: str, *, dry_run: bool) -> tuple[list[str], str]:
    """For a LoRA folder whose base is a local path: the commands that merge it and push the merged model, and the
    command that pushes the adapter naming its base's Hub id (``--dry_run`` kept when the refused push had it)."""
    merged = Path(f"{str(model_dir).rstrip('/')}-merged")
    dry = ["--dry_run"] if dry_run else []
    merge_and_push = [
        command("export", ["--adapters", model_dir, "--merge_lora", "true", "--output_dir", merged]),
        command("push", ["--model_dir", merged, "--repo_id", repo_id, *dry]),
    ]
    with_base = command("push", ["--model_dir", model_dir, "--repo_id", repo_id, *dry, "--base_model_id"]) + " OWNER/NAME"
    return merge_and_push, with_base
