"""Readers: files on disk -> raw rows -> ``Record``.

Supported row layouts (detected per row from its keys, so a file may mix them, as swift allows):

- swift 4.x: ``{"messages": [...], "positive_messages": [[...]], "negative_messages": [[...], ...], "label": x}``.
  A ``system`` message (or a top-level ``system`` field) is prepended to the first user content as
  ``system + " " + content``, as swift's ``qwen3_emb`` template does; each positive/negative message list gets its
  own ``system`` the same way.
- swift 3.x: ``{"query", "response", "rejected_response", "label"}`` (``rejected_response`` a string or a list;
  an optional ``system`` is prepended to the query as above).
- sentence-transformers columns: ``anchor/positive/negative`` (or ``negative_1..negative_k``, ``negatives``),
  ``sentence1/sentence2/score`` (or ``label``), ``query/positive``, ``question/answer`` ...
- the STS-B release layout: a ``.tsv`` whose header is ``sentence1, sentence2, score`` with scores on the 0-5
  scale (``../shared/data/stsb/*.tsv``, ``data/samples/sts_sample.tsv``); scores are checked to lie in 0..5 and
  divided by 5, so every source of STS labels ends up on the same 0..1 scale.

File types: ``.jsonl``, ``.json`` (an array of objects, or JSON lines under a .json name), ``.csv``, ``.tsv``,
``.parquet``. Reading is plain ``json``/``csv`` (no ``datasets`` round trip) because the errors must name the
line, which ``datasets``' JSON/CSV builders do not report.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .records import DatasetValidationError, ProblemCollector, Record, location

SUPPORTED_EXTENSIONS = (".jsonl", ".json", ".csv", ".tsv", ".parquet")

# Field names per role, in order of preference.
ANCHOR_FIELDS = ("anchor", "query", "sentence1", "question", "text1")
POSITIVE_FIELDS = ("positive", "response", "sentence2", "answer", "document", "text2")
NEGATIVE_FIELDS = ("negative", "negatives", "rejected_response")
LABEL_FIELDS = ("label", "score")
# The positive field a user of each anchor field most likely meant, for "missing field" messages.
_PAIRED_POSITIVE = {"query": "response", "sentence1": "sentence2", "question": "answer", "text1": "text2"}
_NUMBERED_NEGATIVE = re.compile(r"^negative_?(\d+)$")

STSB_COLUMNS = ("sentence1", "sentence2", "score")
STSB_MAX_SCORE = 5.0
_CSV_FIELD_LIMIT = 2**31 - 1


class FieldProblem(Exception):
    """A problem in one field of one row; the reader adds file and row."""

    def __init__(self, field_name: str | None, message: str) -> None:
        super().__init__(message)
        self.field_name = field_name
        self.message = message


@dataclass
class RawTable:
    """Rows of one source before interpretation: ``(row number, row dict or None, parse error or None)``."""

    source: str
    unit: str  # "line" or "row": what the row numbers count
    rows: list[tuple[int, dict[str, Any] | None, str | None]]
    typed: bool = True  # False for csv/tsv, whose values are all strings
    layout: str | None = None  # "stsb" for the STS-B release TSV layout (0-5 scores)


# --- reading files -------------------------------------------------------------------------------


def read_table(path: str | Path) -> RawTable:
    """Read a local file into raw rows, keeping each row's 1-based line (or row) number."""
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise DatasetValidationError(f"{source}: no such file")
    if path.is_dir():
        raise DatasetValidationError(f"{source}: is a folder; expected one of {', '.join(SUPPORTED_EXTENSIONS)}")
    ext = path.suffix.lower()
    if ext == ".jsonl":
        return RawTable(source, "line", list(json_lines(read_text(path).splitlines())))
    if ext == ".json":
        return _read_json(path)
    if ext in (".csv", ".tsv"):
        return _read_delimited(path, "\t" if ext == ".tsv" else ",")
    if ext == ".parquet":
        import pyarrow
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except (pyarrow.ArrowException, OSError) as err:
            raise DatasetValidationError(f"{source}: not a readable parquet file ({err})") from None
        return RawTable(source, "row", [(i, row, None) for i, row in enumerate(rows, start=1)])
    raise DatasetValidationError(
        f"{source}: unsupported file extension {path.suffix!r}; use one of {', '.join(SUPPORTED_EXTENSIONS)}"
    )


def read_text(path: Path) -> str:
    """A data file's whole text; a file that is not UTF-8 text is an error naming its line and byte offset.

    A UTF-8 byte-order mark is dropped (spreadsheet exports write one); a NUL byte means a binary file.
    """
    data = path.read_bytes()
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as err:
        offset = bom + err.start
        line = data.count(b"\n", 0, offset) + 1
        raise DatasetValidationError(
            f"{path}, line {line}: not UTF-8 text (byte 0x{data[offset]:02x} at byte offset {offset}); "
            "data files must be UTF-8 text (is it a binary file? otherwise re-save it as UTF-8)"
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        offset = bom + len(text[:nul].encode("utf-8"))
        raise DatasetValidationError(
            f"{path}, line {text.count(chr(10), 0, nul) + 1}: a NUL byte at byte offset {offset}; "
            "this is a binary file, not a text data file"
        )
    return text


def raise_csv_field_limit() -> None:
    """Lift ``csv``'s 131,072-character field limit: a long document in a TSV/CSV must load as it does in JSONL.

    The limit is process-wide; 2**31 - 1 is the largest value every platform's C ``long`` holds.
    """
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)


def json_lines(lines: Iterable[str], first_line: int = 1) -> Iterator[tuple[int, dict | None, str | None]]:
    """``(line number, object or None, problem or None)`` per non-blank line: bad lines are reported, not raised."""
    for number, line in enumerate(lines, start=first_line):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, None, f"not valid JSON ({exc.msg} at column {exc.colno})"
            continue
        if not isinstance(value, dict):
            yield number, None, f"expected a JSON object, got {type(value).__name__}"
            continue
        yield number, value, None


def _read_json(path: Path) -> RawTable:
    text = read_text(path)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # JSON lines under a .json name, which datasets also accepts
            return RawTable(str(path), "line", list(json_lines(text.splitlines())))
        raise DatasetValidationError(f"{location(str(path), exc.lineno, None, 'line')}: not valid JSON ({exc.msg})") from None
    if isinstance(value, dict):
        if not value:
            return RawTable(str(path), "row", [])
        return RawTable(str(path), "line", [(1, value, None)])
    if not isinstance(value, list):
        raise DatasetValidationError(f"{path}: expected a JSON array of objects, got {type(value).__name__}")
    rows = []
    for i, item in enumerate(value, start=1):
        if isinstance(item, dict):
            rows.append((i, item, None))
        else:
            rows.append((i, None, f"expected a JSON object, got {type(item).__name__}"))
    return RawTable(str(path), "row", rows)


def _read_delimited(path: Path, delimiter: str) -> RawTable:
    # TSV files (STS-B among them) contain bare double quotes inside sentences: no quoting for TSV.
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    source = str(path)
    raise_csv_field_limit()
    reader = csv.reader(io.StringIO(read_text(path), newline=""), delimiter=delimiter, quoting=quoting)
    try:
        header = next(reader, None)
        if header is None:
            return RawTable(source, "line", [], typed=False)
        header = [h.strip() for h in header]
        rows: list[tuple[int, dict | None, str | None]] = []
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                rows.append((line, None, f"has {len(values)} fields, the header has {len(header)} ({', '.join(header)})"))
                continue
            rows.append((line, dict(zip(header, values, strict=True)), None))
    except csv.Error as err:
        raise DatasetValidationError(f"{location(source, reader.line_num, None, 'line')}: {err}") from None
    layout = "stsb" if delimiter == "\t" and tuple(header[:3]) == STSB_COLUMNS else None
    return RawTable(source, "line", rows, typed=False, layout=layout)


# --- rows -> records -----------------------------------------------------------------------------


def records_from_table(table: RawTable, *, score_scale: float | None = None) -> list[Record]:
    """Interpret every row, collecting problems so the error shows the first few and the count.

    ``score_scale`` divides labels (STS-B layout files get 5 automatically).
    """
    if score_scale is None and table.layout == "stsb":
        score_scale = STSB_MAX_SCORE
    problems = ProblemCollector(table.source)
    records = []
    for row_no, raw, error in table.rows:
        if error is not None:
            problems.add(f"{location(table.source, row_no, None, table.unit)}: {error}")
            continue
        try:
            record = record_from_row(raw, source=table.source, row=row_no, unit=table.unit, typed=table.typed)
            if score_scale is not None and record.label is not None:
                record.label = _scaled(record, score_scale)
        except FieldProblem as exc:
            problems.add(f"{location(table.source, row_no, exc.field_name, table.unit)}: {exc.message}")
            continue
        records.append(record)
    problems.raise_if_any()
    return records


def _scaled(record: Record, scale: float) -> float:
    if not 0.0 <= record.label <= scale:
        raise FieldProblem(record.fields.get("label"), f"score {record.label:g} is outside 0..{scale:g} (STS-B scale)")
    return record.label / scale


def record_from_row(raw: dict[str, Any], *, source: str, row: int, unit: str = "row", typed: bool = True) -> Record:
    """One raw row -> ``Record``; raises ``FieldProblem`` naming the field at fault."""
    if "messages" in raw:
        return _from_messages(raw, source, row, unit, typed)
    return _from_columns(raw, source, row, unit, typed)


def _from_columns(raw: dict[str, Any], source: str, row: int, unit: str, typed: bool) -> Record:
    anchor_field = next((f for f in ANCHOR_FIELDS if f in raw), None)
    if anchor_field is None:
        raise FieldProblem(
            None,
            f"no anchor field: expected 'messages' (swift 4.x), 'query' (swift 3.x) or one of {ANCHOR_FIELDS}; "
            f"the row has {sorted(raw)}",
        )
    fields = {"anchor": anchor_field}
    anchor = _text(raw[anchor_field], anchor_field)
    system = raw.get("system")
    if system not in (None, ""):
        anchor = _text(system, "system") + " " + anchor

    positive_field = next((f for f in POSITIVE_FIELDS if f in raw and raw[f] is not None), None)
    fields["positive"] = positive_field or _PAIRED_POSITIVE.get(anchor_field, "positive")
    positives = _texts(raw[positive_field], positive_field) if positive_field else []

    negatives: list[str] = []
    negative_names = [f for f in NEGATIVE_FIELDS if f in raw and raw[f] is not None]
    numbered = sorted(
        ((int(m.group(1)), key) for key in raw if (m := _NUMBERED_NEGATIVE.match(key)) and raw[key] is not None),
    )
    for name in negative_names + [key for _, key in numbered]:
        negatives.extend(_texts(raw[name], name, allow_empty_list=True))
    if negative_names or numbered:
        fields["negative"] = (negative_names + [key for _, key in numbered])[0]

    label_field = next((f for f in LABEL_FIELDS if f in raw), None)
    fields["label"] = label_field or "label"
    label = _label(raw[label_field], label_field, typed) if label_field else None
    return Record(anchor, positives, negatives, label, source, row, unit, fields, _scores(raw, typed))


def _from_messages(raw: dict[str, Any], source: str, row: int, unit: str, typed: bool) -> Record:
    anchor = _message_text(raw["messages"], "messages", raw.get("system"))
    fields = {"anchor": "messages", "positive": "positive_messages", "negative": "negative_messages", "label": "label"}
    positives = _message_lists(raw.get("positive_messages"), "positive_messages")
    negatives = _message_lists(raw.get("negative_messages"), "negative_messages")
    label = _label(raw["label"], "label", typed) if "label" in raw else None
    return Record(anchor, positives, negatives, label, source, row, unit, fields, _scores(raw, typed))


def _scores(raw: dict[str, Any], typed: bool) -> list[float] | None:
    """The optional ``scores`` list (a teacher's score of the positive, then of each negative)."""
    value = raw.get("scores")
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise FieldProblem("scores", f"must be a non-empty list of numbers, got {type(value).__name__}")
    out = [_label(v, f"scores[{i}]", typed) for i, v in enumerate(value)]
    if any(v is None for v in out):
        raise FieldProblem("scores", "contains an empty value")
    return out


def _message_lists(value: Any, field_name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise FieldProblem(field_name, f"must be a list of message lists, got {type(value).__name__}")
    if value and isinstance(value[0], dict):  # a single message list written without the outer brackets
        value = [value]
    return [_message_text(item, f"{field_name}[{i}]") for i, item in enumerate(value)]


def _message_text(messages: Any, field_name: str, system: Any = None) -> str:
    """The text swift's qwen3_emb template embeds: the first non-system content, ``system + " "`` in front."""
    if not isinstance(messages, list) or not messages:
        raise FieldProblem(field_name, "must be a non-empty list of {'role', 'content'} messages")
    content = None
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or "content" not in message:
            raise FieldProblem(f"{field_name}[{i}]", "each message must be an object with 'role' and 'content'")
        if message.get("role") == "system":
            system = message["content"]
        elif content is None:
            content = _text(message["content"], f"{field_name}[{i}].content")
    if content is None:
        raise FieldProblem(field_name, "has only a system message; the text to embed is missing")
    if system not in (None, ""):
        content = _text(system, "system") + " " + content
    return content


def _text(value: Any, field_name: str) -> str:
    if not isinstance(value, str):
        raise FieldProblem(field_name, f"must be a string, got {type(value).__name__}")
    if not value.strip():
        raise FieldProblem(field_name, "is empty")
    return value


def _texts(value: Any, field_name: str, allow_empty_list: bool = False) -> list[str]:
    if isinstance(value, list):
        if not value and not allow_empty_list:
            raise FieldProblem(field_name, "is an empty list")
        return [_text(v, f"{field_name}[{i}]") for i, v in enumerate(value)]
    return [_text(value, field_name)]


def _label(value: Any, field_name: str, typed: bool) -> float | None:
    if value is None or (not typed and isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise FieldProblem(field_name, f"must be a number, got {type(value).__name__} {value!r}")
    if isinstance(value, str):
        if typed:  # JSON / parquet / Hub values carry their type: a quoted number is a mistake worth showing
            raise FieldProblem(field_name, f"must be a number, got the string {value!r}")
        try:
            value = float(value)
        except ValueError:
            raise FieldProblem(field_name, f"must be a number, got {value!r}") from None
    value = float(value)
    if not math.isfinite(value):
        raise FieldProblem(field_name, f"must be a finite number, got {value}")
    return value
