"""The format-neutral row (`Record`) and the one error type every data problem raises.

Readers turn any supported layout into ``Record`` objects; the embedding loader and the reranker builder both
start from these, so a format is understood in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# How many bad rows a validation error lists before it only counts the rest.
MAX_REPORTED_PROBLEMS = 5


@dataclass
class Record:
    """One training example, whatever file layout it came from.

    ``row`` is the 1-based number used in error messages (a line number for line-based files, the row index
    for JSON arrays, parquet and Hub datasets; ``unit`` says which). ``fields`` maps the roles ``anchor``,
    ``positive``, ``negative`` and ``label`` to the field names of the source layout, so later checks name the
    field the user actually wrote (``response``, ``positive_messages``, ``score`` ...).
    """

    anchor: str
    positives: list[str]
    negatives: list[str]
    label: float | None
    source: str
    row: int
    unit: str = "row"
    fields: dict[str, str] = field(default_factory=dict)
    # A teacher's scores of the positive then each negative (a row's ``scores`` list), for distillation losses.
    scores: list[float] | None = None

    def where(self, role: str) -> str:
        """``'file.jsonl, line 3, field 'response''`` for the field that holds ``role``."""
        return location(self.source, self.row, self.fields.get(role, role), self.unit)


def location(source: str, row: int | None, field_name: str | None, unit: str = "row") -> str:
    parts = [str(source)]
    if row is not None:
        parts.append(f"{unit} {row}")
    if field_name is not None:
        parts.append(f"field {field_name!r}")
    return ", ".join(parts)


class DatasetValidationError(ValueError):
    """A dataset problem found before training; the message names file, row (1-based) and field."""


class ProblemCollector:
    """Gathers per-row problems so one error can show the first few and the total count."""

    def __init__(self, source: str, limit: int = MAX_REPORTED_PROBLEMS) -> None:
        self.source = source
        self.limit = limit
        self.messages: list[str] = []
        self.count = 0

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.messages) < self.limit:
            self.messages.append(message)

    def raise_if_any(self, hint: str = "") -> None:
        if not self.count:
            return
        if self.count == 1:
            text = self.messages[0]
        else:
            shown = "\n  ".join(self.messages)
            more = f"\n  ... and {self.count - len(self.messages)} more" if self.count > len(self.messages) else ""
            text = f"{self.count} invalid rows in {self.source}; first {len(self.messages)}:\n  {shown}{more}"
        raise DatasetValidationError(text + (f"\n{hint}" if hint else ""))
