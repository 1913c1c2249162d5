"""The project's one spelling of true and false, for flags (``--flag true``) and environment variables alike.

The words are those of transformers' ``strtobool`` (``transformers/utils/generic.py``), which ms-swift and
accelerate read their boolean variables with: ``y yes t true on 1`` / ``n no f false off 0``, in any case. The one
extra: surrounding spaces are ignored. Written out here rather than imported so that parsing the command line does
not import transformers.
"""

from __future__ import annotations

TRUE_WORDS = ("y", "yes", "t", "true", "on", "1")
FALSE_WORDS = ("n", "no", "f", "false", "off", "0")
ACCEPTED = "true or false (also yes/no, y/n, t/f, on/off, 1/0)"


def parse_bool(text: str) -> bool:
    """``True``/``False`` for one of the words above; ``ValueError`` (saying what is accepted) for anything else."""
    word = str(text).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"expected {ACCEPTED}, got {text!r}")
