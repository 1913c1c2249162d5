"""The one rule for replacing an existing output: only what this project wrote, never a folder a user works in.

Commands that write a folder (``export``, the reranker export, ``mine``) build it in a scratch folder next to the
target and rename it into place; with ``--exist_ok true`` an existing target is moved aside and deleted. Whether
that may happen is decided here and nowhere else:

- never ``/``, the home folder, the current folder or any folder above it (so ``.`` and ``..`` are refused),
  whatever they hold;
- an empty folder may be replaced;
- a folder holding this project's marker file (``MARKER``, written last by ``write_marker``) of the same kind may
  be replaced, as long as it holds nothing beyond the files the marker lists (a file a user added is theirs);
- anything else (a folder of foreign files, a file, an older export without a marker) is refused with
  ``ReplaceRefused``, naming the folder and the reason, before anything is deleted.

Files written by commands (the evaluation summaries) follow the same idea through ``check_file_replaceable``:
an existing file is overwritten only when the caller recognises it as its own.

Usage for a command that writes a folder::

    from st_qwen3emb.safe_replace import check_replaceable, replace_folder, write_marker

    check_replaceable(output, kind="mine", exist_ok=exist_ok)  # early, before any model loads
    ...                                                         # build into scratch / "built" (same file system)
    write_marker(built, kind="mine")                            # last, once the folder is complete
    replace_folder(built, output, kind="mine", exist_ok=exist_ok, scratch=scratch)

The marker is a hidden file, so ``push`` (which skips hidden files) never uploads it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

MARKER = ".st-qwen3emb-output.json"
_WRITER = "st-qwen3emb"


class ReplaceRefused(ValueError):
    """An existing path that may not be replaced; the message names it, says why and what to do instead."""


def _resolved(path: str | Path) -> Path:
    return Path(os.path.abspath(os.path.expanduser(str(path)))).resolve()


def protected_reason(path: str | Path) -> str | None:
    """Why ``path`` may never be replaced (``/``, home, the current folder or one above it), else ``None``."""
    target = _resolved(path)
    cwd = Path.cwd().resolve()
    if target.parent == target:
        return "it is the root of the file system"
    if target == Path.home().resolve():
        return "it is the home folder"
    if target == cwd:
        return "it is the current folder"
    if target in cwd.parents:
        return "it contains the current folder"
    return None


def _files(folder: Path) -> list[str]:
    """Every file and link under ``folder`` (relative, '/'-separated); folders themselves are not listed."""
    found = []
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        found += [(rel / name).as_posix() for name in files]
        found += [(rel / name).as_posix() for name in dirs if (Path(root) / name).is_symlink()]
    return sorted(found)


def read_marker(folder: str | Path) -> dict | None:
    """The marker of a folder this project wrote, or ``None`` when there is none (or it is not ours)."""
    path = Path(folder) / MARKER
    if not path.is_file() or path.is_symlink():
        return None
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return marker if isinstance(marker, dict) and marker.get("written_by") == _WRITER else None


def write_marker(folder: str | Path, *, kind: str, may_add: Iterable[str] = ()) -> Path:
    """Record in ``folder`` that this project wrote it as ``kind``, with the files it holds now.

    Call it last, once the folder is complete. ``may_add``: file names other commands may add to the folder later
    (e.g. the model card's), which a replacement may delete too.
    """
    folder = Path(folder)
    marker = {"written_by": _WRITER, "kind": kind, "files": _files(folder), "may_add": sorted(may_add)}
    path = folder / MARKER
    path.write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    return path


def replace_refusal(path: str | Path, *, kind: str) -> str | None:
    """Why the existing ``path`` may not be replaced by a new ``kind`` output, or ``None`` when it may (or is absent)."""
    target = _resolved(path)
    reason = protected_reason(target)
    if reason:
        return reason
    if not target.exists():
        return None
    if not target.is_dir():
        return "it is a file, not a folder"
    files = _files(target)
    if not files:
        return None
    marker = read_marker(target)
    if marker is None:
        return f"it holds files this project did not write (no {MARKER} marker), e.g. {files[0]}"
    if marker.get("kind") != kind:
        return f"it holds a {marker.get('kind')!r} output of this project, not a {kind!r} one"
    known = {MARKER, *marker.get("files", ()), *marker.get("may_add", ())}
    foreign = [name for name in files if name not in known]
    if foreign:
        return f"it holds files added after it was written: {', '.join(foreign[:3])}" + (" ..." if len(foreign) > 3 else "")
    return None


def check_replaceable(path: str | Path, *, kind: str, exist_ok: bool, flag: str = "--exist_ok true") -> None:
    """Refuse (``ReplaceRefused``) unless a new ``kind`` output may be written at ``path``.

    An absent path is fine. An existing one needs ``exist_ok`` and must pass ``replace_refusal``; the message
    suggests ``flag`` only when passing it would help.
    """
    target = _resolved(path)
    reason = replace_refusal(target, kind=kind)
    if reason:
        raise ReplaceRefused(
            f"refusing to replace {target}: {reason}. Nothing was deleted; choose another output folder "
            "(a new one, or an empty one)"
        )
    if target.exists() and not exist_ok:
        raise ReplaceRefused(f"the output folder {target} already exists; pass {flag} to replace it")


def replace_folder(built: Path, target: Path, *, kind: str, exist_ok: bool, scratch: Path) -> None:
    """Move the finished folder ``built`` to ``target``, replacing an existing target only as ``check_replaceable``
    allows (checked again here, right before the swap).

    The old folder is moved into ``scratch`` (same file system: two renames) and deleted only once the new one is
    in place; if the second rename fails it is put back.
    """
    check_replaceable(target, kind=kind, exist_ok=exist_ok)
    if not target.exists():
        os.replace(built, target)
        return
    old = scratch / "previous"
    os.replace(target, old)
    try:
        os.replace(built, target)
    except OSError:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def check_file_replaceable(path: str | Path, is_ours: Callable[[Path], bool], *, what: str) -> None:
    """Refuse (``ReplaceRefused``) to overwrite an existing ``path`` unless ``is_ours(path)`` recognises it."""
    target = _resolved(path)
    if target.is_dir():
        raise ReplaceRefused(f"the {what} {target} is a folder; pass a file name")
    if target.exists() and not is_ours(target):
        raise ReplaceRefused(
            f"refusing to overwrite {target} with the {what}: this project did not write it. Nothing was changed; "
            "choose another file name"
        )
