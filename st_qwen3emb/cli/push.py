"""``st-qwen3emb push``: upload an exported model folder (``st_qwen3emb.hub.push_to_hub``)."""

from __future__ import annotations

import argparse
import sys

from st_qwen3emb.hub import PushError, PushRefused, describe_files, push_to_hub


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="st-qwen3emb push", description="Upload a model folder to the Hugging Face Hub.")
    parser.add_argument("--model_dir", required=True, help="the exported sentence-transformers folder (with README.md)")
    parser.add_argument("--repo_id", required=True, help="USER/NAME on the Hub")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--revision", help="the branch to push to (created when new)")
    parser.add_argument("--create_pr", action="store_true", help="open a pull request instead of committing")
    parser.add_argument("--commit_message")
    parser.add_argument("--dry_run", action="store_true", help="list the files that would go and stop")
    parser.add_argument("--base_model_id", metavar="OWNER/NAME",
                        help="LoRA adapter folders: the base model's Hub id, written into the uploaded "
                             "adapter_config.json in place of a local path (the folder is not changed)")
    options = parser.parse_args(argv)
    try:
        result = push_to_hub(
            options.model_dir,
            options.repo_id,
            private=options.private,
            revision=options.revision,
            create_pr=options.create_pr,
            commit_message=options.commit_message,
            dry_run=options.dry_run,
            base_model_id=options.base_model_id,
        )
    except PushRefused as err:
        print(f"st-qwen3emb push: refused: {err}", file=sys.stderr)
        return 2
    except PushError as err:
        print(f"st-qwen3emb push: {err}", file=sys.stderr)
        return 1
    target = f"{result.repo_id}" + (f"@{result.revision}" if result.revision else "")
    if result.dry_run:
        print(f"dry run: would upload {describe_files(result.files)} to {target}:")
        for name, size in result.files:
            print(f"  {size:>14,d}  {name}")
        return 0
    print(f"pushed {describe_files(result.files)} to {target}")
    if result.pr_url:
        print(f"pull request: {result.pr_url}")
    elif result.commit_url:
        print(f"commit: {result.commit_url}")
    return 0
