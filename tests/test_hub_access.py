"""The Hub unreachable (no network, HF_HUB_OFFLINE unset): Hub ids fail within seconds, with hints that run as typed."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def hub_down(monkeypatch, tmp_path):
    """No HF_HUB_OFFLINE, an endpoint that refuses connections, an empty Hub cache."""
    import datasets.config
    from huggingface_hub import constants

    from st_qwen3emb import hub_access

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # restored after the test, as are the attributes below
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub_access, "_probed", {})
    return constants


def test_unreachable_hub_fails_fast_for_models_and_datasets(hub_down):
    import datasets  # noqa: F401 -- imports are not what is timed
    import sentence_transformers  # noqa: F401
    import transformers  # noqa: F401

    from st_qwen3emb.data import DatasetValidationError, default_sts_sample_path, load_dataset
    from st_qwen3emb.model import ModelLoadError, load_model

    start = time.perf_counter()
    with pytest.raises(ModelLoadError, match="cannot be reached") as model_error:
        load_model("some-org/some-model")
    with pytest.raises(DatasetValidationError, match="cannot be reached") as data_error:
        load_dataset("some-org/some-dataset:positive", loss_type="infonce")
    assert time.perf_counter() - start < 3
    assert "local model folder" in str(model_error.value)
    sample = default_sts_sample_path()
    assert sample.is_file() and str(sample) in str(data_error.value)
    assert "default_sts_sample_path()" not in str(data_error.value)


def test_the_hub_is_probed_once_and_hf_hub_offline_is_honoured(hub_down, monkeypatch):
    import huggingface_hub.utils

    from st_qwen3emb import hub_access

    probes = []

    class DeadSession:
        def head(self, url, timeout):
            probes.append((url, timeout))
            raise ConnectionError("network is unreachable")

    monkeypatch.setattr(huggingface_hub.utils, "get_session", lambda: DeadSession())
    assert "cannot be reached" in hub_access.hub_unreachable_reason()
    assert "cannot be reached" in hub_access.hub_unreachable_reason()
    assert len(probes) == 1 and probes[0][1] <= 3
    assert hub_down.HF_HUB_OFFLINE is True  # the libraries now read their caches instead of retrying

    monkeypatch.setattr(hub_access, "_probed", {})
    probes.clear()
    assert hub_access.hub_unreachable_reason() == "HF_HUB_OFFLINE is set" and not probes


def test_a_cached_model_still_loads_when_the_hub_is_down(hub_down):
    from st_qwen3emb import hub_access

    snapshot = Path(hub_down.HF_HUB_CACHE) / "models--some-org--cached" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    assert hub_access.unavailable_model("some-org/cached") is None
    assert "cannot be reached" in hub_access.unavailable_model("some-org/not-cached")
