"""Whether the Hugging Face Hub can be reached, decided once per process, so that a Hub id fails at once offline.

huggingface_hub retries a refused or timed-out connection with back-off (``utils/_http.py``: five retries, about
25 s per file), and loading one model asks for several files, so without a network every Hub id used to cost
minutes before its error. Here one short request to the Hub endpoint decides; when it gets no answer (or
``HF_HUB_OFFLINE=1`` is set) the process switches to offline mode, as ``HF_HUB_OFFLINE=1`` would: huggingface_hub,
transformers and datasets then read their local caches at once, so cached models and datasets still load.
"""

from __future__ import annotations

import os
import sys

# One request; a refused connection answers at once, a silent network within this many seconds.
PROBE_TIMEOUT_S = 2.0

_probed: dict[str, str | None] = {}  # endpoint -> why it cannot be reached (None: it answered)


def hub_unreachable_reason() -> str | None:
    """Why the Hub cannot be used (``HF_HUB_OFFLINE`` set, or the probe's error), or None when it answers."""
    from huggingface_hub import constants

    endpoint = constants.ENDPOINT
    if endpoint in _probed:
        return _probed[endpoint]
    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    from huggingface_hub.utils import get_session

    try:
        # Any HTTP answer, even an error status, means the Hub is there; only transport failures count.
        get_session().head(endpoint, timeout=PROBE_TIMEOUT_S)
        reason = None
    except Exception as err:  # httpx's connect, DNS, proxy and timeout errors: any of them means no Hub
        reason = f"{endpoint} cannot be reached ({type(err).__name__}: {err})"
        _go_offline()
    _probed[endpoint] = reason
    return reason


def _go_offline() -> None:
    from huggingface_hub import constants

    os.environ["HF_HUB_OFFLINE"] = "1"  # for libraries imported later and for worker processes
    constants.HF_HUB_OFFLINE = True
    datasets_config = sys.modules.get("datasets.config")  # read once at its import: already imported, set it too
    if datasets_config is not None:
        datasets_config.HF_HUB_OFFLINE = True


def is_cached(repo_id: str, filename: str, *, revision: str | None = None, repo_type: str = "model") -> bool:
    """Whether ``filename`` of ``repo_id`` is in the local Hub cache (so it loads offline)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, filename, revision=revision, repo_type=repo_type), str)
    except ValueError:  # not a valid repo id
        return False


def unavailable_model(repo_id: str, *, revision: str | None = None) -> str | None:
    """Why Hub model ``repo_id`` cannot be loaded now (the Hub unreachable and the model not cached), else None."""
    reason = hub_unreachable_reason()
    if reason is None or is_cached(repo_id, "config.json", revision=revision):
        return None
    return reason
