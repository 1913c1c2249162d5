"""``st-qwen3emb sft --resume_from_checkpoint CKPT|RUN_DIR|last``: the run's flags come back from its args.json.

The flags given on the command line win over the recorded ones; what they change is reported in one line. The
loss's environment settings recorded in args.json (``INFONCE_*``, the reranker's) are restored where the variable is
unset now. Which checkpoint is named, and whether it is complete, is ``run_dir.find_resume_checkpoint``'s business.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from st_qwen3emb.checkpoint_marker import IncompleteCheckpoint
from st_qwen3emb.config import (
    ConfigError,
    RunConfig,
    flags_from_args_json,
    given_flags,
    override_flags,
    parse_args,
)
from st_qwen3emb.runs import ARGS_FILE, RunRecordError, find_resume_checkpoint, read_run_args


def recorded_args(checkpoint: Path) -> tuple[Path, dict[str, Any]] | None:
    """The args.json a checkpoint was trained with: its own copy, else its run folder's."""
    for folder in (checkpoint, checkpoint.parent):
        try:
            data = read_run_args(folder)
        except (OSError, RunRecordError) as err:
            raise ConfigError(f"--resume_from_checkpoint: cannot read {folder / ARGS_FILE}: {err}") from None
        if data is not None:
            return folder / ARGS_FILE, data
    return None


def restore_flags(argv: list[str], environ: MutableMapping[str, str] | None = None) -> tuple[list[str], str | None]:
    """``argv`` completed from the resumed run's args.json, and the line that says so (None when not resuming).

    ``environ`` (default ``os.environ``) receives the recorded loss environment settings that are unset in it.
    """
    given = given_flags(argv)
    spec = given.get("resume_from_checkpoint")
    if not spec or len(spec) != 1:
        return argv, None  # not resuming, or a malformed flag that parse_args reports
    output_dir = (given.get("output_dir") or [RunConfig.output_dir])[0]
    try:
        checkpoint = find_resume_checkpoint(spec[0], output_dir)
    except (FileNotFoundError, IncompleteCheckpoint) as err:  # a one-line error, exit 2, before any run folder
        raise ConfigError(str(err)) from None
    found = recorded_args(checkpoint)
    if found is None:
        return argv, f"resuming from {checkpoint}: it has no {ARGS_FILE}, so only the flags given are used"
    path, args = found
    recorded = flags_from_args_json(args)
    merged = override_flags(recorded, argv)
    try:
        before = parse_args(recorded).to_args_json()
    except ConfigError as err:
        raise ConfigError(f"{path}: the recorded flags no longer parse: {err}") from None
    after = parse_args(merged).to_args_json()
    changed = [
        f"--{name} {_shown(before.get(name))} -> {_shown(after.get(name))}"
        for name in after
        if name != "resume_from_checkpoint" and before.get(name) != after.get(name)
    ]
    changed += _restore_environment(args.get("env"), os.environ if environ is None else environ)
    what = "changed: " + ", ".join(changed) if changed else "nothing changed"
    return merged, f"resuming from {checkpoint} with the flags of {path}; {what}"


def _restore_environment(recorded: Any, environ: MutableMapping[str, str]) -> list[str]:
    if not isinstance(recorded, dict):
        return []
    changed = []
    for name, value in recorded.items():
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if name not in environ:
            environ[name] = text
        elif environ[name].strip().lower() != text.lower():
            changed.append(f"{name} {text} -> {environ[name]}")
    return changed


def _shown(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, list):
        return " ".join(map(str, value)) or "(none)"
    return str(value)
