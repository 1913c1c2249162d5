"""Run a script in a fresh Python in which ``st_qwen3emb`` cannot be imported: proof that a saved model loads with
plain sentence-transformers (test_model, test_reranker, test_lora_export)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

IMPORT_BLOCKER = textwrap.dedent(
    """
    import importlib.abc, json, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "st_qwen3emb" or name.startswith("st_qwen3emb."):
                raise ImportError("st_qwen3emb is blocked in this process")
    sys.meta_path.insert(0, Block())
    """
)

# Appended to every body: the body fills ``out`` (with ``model``), this reports the modules and the blocking.
_REPORT = textwrap.dedent(
    """
    out["modules"] = sorted(type(m).__module__ for m in model)
    try:
        import st_qwen3emb  # noqa: F401
        out["blocked"] = False
    except ImportError:
        out["blocked"] = True
    print("RESULT" + json.dumps(out))
    """
)


def run_plain(body: str, folder: str | Path, payload: Any, tmp_path: Path, name: str) -> dict[str, Any]:
    """Run ``body`` (reads ``sys.argv[1]`` = folder, ``sys.argv[2]`` = JSON payload; sets ``model`` and ``out``) and
    return its ``out``, checking that st_qwen3emb was blocked and only sentence-transformers modules were loaded."""
    script = tmp_path / f"{name}.py"
    script.write_text(IMPORT_BLOCKER + textwrap.dedent(body) + _REPORT)
    proc = subprocess.run(
        [sys.executable, str(script), str(folder), json.dumps(payload)],
        capture_output=True, text=True, cwd=str(tmp_path), timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    result = json.loads(line[len("RESULT"):])
    assert result["blocked"] is True
    assert all(m.startswith("sentence_transformers.") for m in result["modules"])
    return result
