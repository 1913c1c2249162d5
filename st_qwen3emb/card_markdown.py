"""Markdown that cannot be hijacked: user-supplied text (file names, model names, dataset specs, evaluation names)
placed in a model card stays the text it is.

A file name like ``"x\\n---\\n<img src=...>"`` must not end a paragraph, start a heading, open an HTML tag or a
``javascript:`` link, and a ``|`` must not split a table row. Each helper returns one line of CommonMark / GitHub
markdown (the Hub renders GitHub-flavoured markdown) whose rendering shows ``text`` literally:

- ``plain``: running text; line breaks become spaces and the characters that start markdown or HTML constructs are
  backslash-escaped (CommonMark: any ASCII punctuation may be escaped).
- ``code``: an inline code span (no markdown or HTML inside one); control characters are shown as ``\\n``-style
  escapes and the backtick fence is longer than any backtick run in the text.
- ``cell``: a table cell; GitHub tables split on ``|`` even inside code spans unless it is written ``\\|``.
- ``code_block``: a fenced block whose fence is longer than any backtick run inside, so no line can close it.
"""

from __future__ import annotations

import re

_PLAIN_SPECIALS = re.compile(r"([\\`*_\[\]<>!#&~$])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_NAMED_CONTROLS = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_BACKTICKS = re.compile(r"`+")


def _longest_backtick_run(text: str) -> int:
    return max((len(m.group(0)) for m in _BACKTICKS.finditer(text)), default=0)


def visible_controls(text: str) -> str:
    """``text`` on one line: newlines, tabs and other control characters written as escapes (``\\n``, ``\\x1b``)."""
    return _CONTROL.sub(lambda m: _NAMED_CONTROLS.get(m.group(0), f"\\x{ord(m.group(0)):02x}"), str(text))


def plain(text: object) -> str:
    """``text`` as inert running text on one line."""
    one_line = " ".join(_CONTROL.sub(" ", str(text)).split())
    return _PLAIN_SPECIALS.sub(r"\\\1", one_line)


def code(text: object) -> str:
    """``text`` as an inline code span (shown verbatim, control characters escaped)."""
    body = visible_controls(str(text))
    fence = "`" * (_longest_backtick_run(body) + 1)
    pad = " " if body.startswith("`") or body.endswith("`") or (body.startswith(" ") and body.endswith(" ")) else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def cell(markdown: str) -> str:
    """An already-escaped piece of markdown made safe for a table cell."""
    return markdown.replace("|", "\\|")


def code_block(text: str, language: str = "") -> list[str]:
    """The lines of a fenced code block holding ``text`` verbatim."""
    fence = "`" * max(3, _longest_backtick_run(text) + 1)
    return [f"{fence}{language}", text, fence]
