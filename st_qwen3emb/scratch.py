"""Hidden scratch folders that say who wrote them, atomic deletion, and the sweep of scratch left by dead processes.

Every temporary folder this project writes next to its outputs is named ``.<kind>-<name>@<host>.<pid>``:
``tmp`` (being written, renamed into place when complete), ``trash`` (renamed away, being deleted) or ``old``
(the previous version of a folder being replaced). A ``kill -9`` leaves such a folder behind; the next run in the
same place removes it once the process that wrote it is gone (same host, pid no longer running), and never
touches a folder of a live process, of another host, or one whose name this project does not write.

Pure filesystem code (no torch).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

KINDS = ("tmp", "trash", "old")
_SCRATCH_RE = re.compile(r"^\.(?P<kind>tmp|trash|old)-(?P<name>.+)@(?P<host>[A-Za-z0-9_.-]+)\.(?P<pid>\d+)$")


def host_name() -> str:
    # "@" and "/" cannot appear in the name we parse back; hostnames never hold them, but be safe.
    return re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "localhost"


def scratch_path(target: str | Path, kind: str = "tmp") -> Path:
    """The hidden scratch folder for ``target`` owned by this process (not created)."""
    if kind not in KINDS:
        raise ValueError(f"scratch kind must be one of {KINDS}, not {kind!r}")
    target = Path(target)
    return target.with_name(f".{kind}-{target.name}@{host_name()}.{os.getpid()}")


def make_scratch_dir(target: str | Path) -> Path:
    """Create and return a fresh ``tmp`` scratch folder next to ``target`` (an old one of this pid is replaced)."""
    path = scratch_path(target)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def discard_dir(path: str | Path) -> None:
    """Delete a folder so that readers see it whole or not at all: rename it to hidden trash first, then delete.

    ``shutil.rmtree`` in place, killed half-way, leaves a visible folder with some files gone (a checkpoint
    without its optimizer state that still looks resumable).
    """
    path = Path(path)
    trash = scratch_path(path, "trash")
    if trash.exists():
        shutil.rmtree(trash)
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


@dataclass(frozen=True)
class Scratch:
    path: Path
    kind: str
    name: str
    host: str
    pid: int


def parse_scratch(path: str | Path) -> Scratch | None:
    """The owner recorded in a scratch folder's name, or None for a name this project does not write."""
    path = Path(path)
    m = _SCRATCH_RE.match(path.name)
    if not m:
        return None
    return Scratch(path, m.group("kind"), m.group("name"), m.group("host"), int(m.group("pid")))


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    except OSError:
        return True  # cannot tell: keep its folder
    return True


def folder_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def remove_stale_scratch(folder: str | Path) -> tuple[int, int]:
    """Remove the scratch folders of dead processes of this host directly inside ``folder``.

    Returns (folders removed or restored, bytes freed). An ``old`` folder whose target is missing (killed between
    the two renames of a replacement) is renamed back instead of deleted: it is the only copy.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0, 0
    host = host_name()
    count = freed = 0
    for path in folder.iterdir():
        scratch = parse_scratch(path)
        if scratch is None or scratch.host != host or path.is_symlink() or not path.is_dir():
            continue
        if scratch.pid == os.getpid() or process_alive(scratch.pid):
            continue
        target = folder / scratch.name
        if scratch.kind == "old" and not target.exists() and not target.is_symlink():
            os.replace(path, target)
            count += 1
            continue
        size = folder_bytes(path)
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            count += 1
            freed += size
    return count, freed
