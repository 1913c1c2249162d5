"""``st-qwen3emb``: the swift-compatible command line.

This module only dispatches: each subcommand lives in the module named in ``COMMANDS`` and is imported
when it runs, so ``st-qwen3emb --help`` never imports torch.
"""

from __future__ import annotations

import difflib
import importlib
import sys

# name -> (module with a ``main(argv) -> int``, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "sft": ("st_qwen3emb.cli.sft", "fine-tune an embedding or reranker model (swift sft flags)"),
    "export": ("st_qwen3emb.cli.export", "merge LoRA / export a checkpoint as a plain sentence-transformers folder"),
    "eval": ("st_qwen3emb.cli.eval", "evaluate models on STS or MTEB tasks"),
    "card": ("st_qwen3emb.cli.card", "write the model card (README.md) of an exported model"),
    "push": ("st_qwen3emb.cli.push", "upload an exported model folder to the Hugging Face Hub"),
    "mine": ("st_qwen3emb.cli.mine", "mine hard negatives from a corpus into a training file"),
}


def usage() -> str:
    lines = ["usage: st-qwen3emb COMMAND [FLAGS]", "", "commands:"]
    lines += [f"  {name:<8} {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "Run 'st-qwen3emb COMMAND --help' for the flags of a command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from st_qwen3emb import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        print(f"st-qwen3emb: unknown command '{name}'.{hint}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
