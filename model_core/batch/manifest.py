"""The lines of a batch: every audio file under a folder, or the rows of a CSV / JSONL manifest.

A manifest row names its audio and, optionally, its output name, model, subject (style), strength, smoothing, audio
range, formats and template; an empty cell takes the command line's default. Relative paths are relative to the
manifest's folder. Columns a pipeline keeps for itself (speaker, text, ...) are carried into the report untouched,
but a column that looks like a misspelt known one is refused. Every problem is found before anything runs, and
all of them are reported at once, so an eight-hour run does not stop at line 31,000 over a typo.
"""

from __future__ import annotations

import csv
import difflib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from model_core.output_files import FORMATS

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".w64", ".caf")
COLUMNS = ("audio", "output", "model", "subject", "strength", "smoothing", "start", "end", "format", "template")
ALIASES = {"style": "subject", "formats": "format", "checkpoint": "model", "smoothing_s": "smoothing",
           "start_s": "start", "end_s": "end", "name": "output"}
MAX_STRENGTH = 4.0  # the worker's limits
MAX_SMOOTHING_S = 1.0
MAX_PROBLEMS_SHOWN = 10


@dataclass(frozen=True)
class LineDefaults:
    """What a line that does not say gets: the command line's options."""

    model: str | None = None
    formats: tuple[str, ...] = ("npy",)
    subject: str | None = None
    strength: float = 1.0
    smoothing_s: float = 0.0
    template: str | None = None


@dataclass(frozen=True)
class BatchLine:
    number: int  # the manifest line it came from (1-based; the header is line 1), or its place in the folder
    audio: str
    output: str  # relative POSIX name without suffix; each format adds its own
    model: str
    formats: tuple[str, ...]
    subject: str | None = None
    strength: float = 1.0
    smoothing_s: float = 0.0
    start_s: float = 0.0
    end_s: float | None = None
    template: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({**self.__dict__, "formats": list(self.formats)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BatchLine:
        data = json.loads(text)
        return cls(**{**data, "formats": tuple(data["formats"])})


class ManifestError(ValueError):
    """The manifest cannot be run as it is; the message lists the problems."""


def read_lines(source: str | Path, defaults: LineDefaults, pattern: str | None = None) -> list[BatchLine]:
    """The lines of a folder (its audio files, recursively; `pattern` is a glob like `*.wav`) or a manifest."""
    source = Path(source)
    if source.is_dir():
        lines = _folder_lines(source, defaults, pattern)
    elif not source.is_file():
        raise ManifestError(f"{source} does not exist; give a folder of audio files or a .csv / .jsonl manifest.")
    elif source.suffix.lower() in (".jsonl", ".ndjson"):
        lines = _manifest_lines(source, _jsonl_rows(source), defaults)
    elif source.suffix.lower() in (".csv", ".tsv"):
        lines = _manifest_lines(source, _csv_rows(source), defaults)
    else:
        raise ManifestError(f"{source} is neither a folder nor a .csv / .tsv / .jsonl manifest.")
    _check_unique_outputs(lines)
    return lines


# -- sources -------------------------------------------------------------------------------------------------------
def _folder_lines(folder: Path, defaults: LineDefaults, pattern: str | None) -> list[BatchLine]:
    if defaults.model is None:
        raise ManifestError("A folder of audio needs --checkpoint (a manifest can name a model per line).")
    files = sorted(p for p in folder.rglob(pattern or "*") if p.is_file() and not _hidden(p.relative_to(folder))
                   and (pattern is not None or p.suffix.lower() in AUDIO_SUFFIXES))
    if not files:
        what = f"matching {pattern!r}" if pattern else f"({', '.join(AUDIO_SUFFIXES)})"
        raise ManifestError(f"{folder} holds no audio files {what}.")
    return [BatchLine(number=i, audio=str(p), output=p.relative_to(folder).with_suffix("").as_posix(),
                      model=defaults.model, formats=defaults.formats, subject=defaults.subject,
                      strength=defaults.strength, smoothing_s=defaults.smoothing_s, template=defaults.template)
            for i, p in enumerate(files, start=1)]


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)  # our own state folder, editors' temp files


def _csv_rows(path: Path) -> Iterable[tuple[int, dict[str, object]]]:
    text = _read_text(path)
    dialect = "excel-tab" if path.suffix.lower() == ".tsv" else "excel"
    reader = csv.DictReader(text.splitlines(keepends=True), dialect=dialect)
    if not reader.fieldnames:
        raise ManifestError(f"{path} is empty; its first line must name the columns (at least 'audio').")
    for row in reader:
        if None in row:
            raise ManifestError(f"{path}:{reader.line_num}: more cells than the header has columns.")
        if any((v or "").strip() for v in row.values()):
            yield reader.line_num, row


def _jsonl_rows(path: Path) -> Iterable[tuple[int, dict[str, object]]]:
    for number, text in enumerate(_read_text(path).splitlines(), start=1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{path}:{number}: not valid JSON ({exc.msg}).") from None
        if not isinstance(row, dict):
            raise ManifestError(f"{path}:{number}: each line must be a JSON object like {{\"audio\": \"a.wav\"}}.")
        yield number, row


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ManifestError(f"{path} is not UTF-8 text; save the manifest as UTF-8.") from None


# -- rows -> lines --------------------------------------------------------------------------------------------------
def _manifest_lines(path: Path, rows: Iterable[tuple[int, dict[str, object]]],
                    defaults: LineDefaults) -> list[BatchLine]:
    base = path.parent
    lines, problems, columns = [], [], None
    for number, row in rows:
        if columns is None or set(row) - set(columns):
            columns = _column_map(path, row.keys())
        values = {columns.get(str(k), str(k)): v for k, v in row.items()}
        try:
            lines.append(_line(number, values, base, defaults))
        except ValueError as exc:
            problems.append(f"line {number}: {exc}")
    if problems:
        shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN])
        more = f"; and {len(problems) - MAX_PROBLEMS_SHOWN} more" if len(problems) > MAX_PROBLEMS_SHOWN else ""
        raise ManifestError(f"{path} has {len(problems)} problem(s): {shown}{more}.")
    if not lines:
        raise ManifestError(f"{path} lists no lines.")
    return lines


def _column_map(path: Path, names: Iterable[object]) -> dict[str, str]:
    """Header name -> known column (case and spaces ignored; aliases); other names map to themselves."""
    out = {}
    for raw in names:
        key = str(raw).strip().lower().replace(" ", "_").replace("-", "_")
        key = ALIASES.get(key, key)
        if key not in COLUMNS:
            close = difflib.get_close_matches(key, [*COLUMNS, *ALIASES], n=1, cutoff=0.75)
            if close:
                raise ManifestError(f"{path}: column {str(raw)!r} is not one we know; did you mean {close[0]!r}? "
                                    f"(known: {', '.join(COLUMNS)})")
            key = str(raw)  # the pipeline's own column: carried into the report
        out[str(raw)] = key
    if "audio" not in out.values():
        raise ManifestError(f"{path} has no 'audio' column (the audio file of each line).")
    return out


def _line(number: int, values: dict[str, object], base: Path, defaults: LineDefaults) -> BatchLine:
    def text(name: str) -> str | None:
        value = values.get(name)
        if isinstance(value, (dict, list)):
            raise ValueError(f"{name} must be a single value")
        return None if value is None or not str(value).strip() else str(value).strip()

    audio = text("audio")
    if audio is None:
        raise ValueError("no audio file named")
    model = _resolve(base, text("model")) if text("model") else defaults.model
    if model is None:
        raise ValueError("no model: name one in a 'model' column or pass --checkpoint")
    if not Path(model).is_file():
        raise ValueError(f"model {model} does not exist")
    template = _resolve(base, text("template")) if text("template") else defaults.template
    if template is not None and not Path(template).is_file():
        raise ValueError(f"template {template} does not exist")
    start = _number(text("start"), "start", 0.0, low=0.0)
    end = _number(text("end"), "end", None, low=0.0)
    if end is not None and end <= start:
        raise ValueError(f"end {end:g} s must be after start {start:g} s")
    formats = values.get("format")
    if isinstance(formats, str):
        formats = formats.replace(";", " ").replace(",", " ").replace("|", " ").split()
    output = text("output")
    return BatchLine(
        number=number, audio=_resolve(base, audio), model=model, template=template, start_s=start, end_s=end,
        output=check_output_name(output or PurePosixPath(audio.replace("\\", "/")).stem),
        formats=parse_formats(formats) if formats else defaults.formats, subject=text("subject") or defaults.subject,
        strength=_number(text("strength"), "strength", defaults.strength, low=0.0, high=MAX_STRENGTH),
        smoothing_s=_number(text("smoothing"), "smoothing", defaults.smoothing_s, low=0.0, high=MAX_SMOOTHING_S),
        extra={k: "" if v is None else v if isinstance(v, str) else json.dumps(v)
               for k, v in values.items() if k not in COLUMNS},
    )


def _resolve(base: Path, value: str) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)


def _number(value: str | None, name: str, default: float | None, *, low: float,
            high: float | None = None) -> float | None:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a number") from None
    if not math.isfinite(number) or number < low or (high is not None and number > high):
        limits = f"from {low:g} to {high:g}" if high is not None else f"{low:g} or more"
        raise ValueError(f"{name} {value} must be {limits}")
    return number


def parse_formats(items: Iterable[object]) -> tuple[str, ...]:
    """Format names, in order, without repeats; ValueError naming an unknown one."""
    out: list[str] = []
    for item in items:
        name = str(item).strip().lower()
        if name not in FORMATS:
            raise ValueError(f"format {name!r} is not one of {', '.join(FORMATS)}")
        if name not in out:
            out.append(name)
    if not out:
        raise ValueError("no output format named")
    return tuple(out)


def check_output_name(name: str) -> str:
    """A relative output name inside the output folder (subfolders allowed), as POSIX text."""
    cleaned = name.strip().replace("\\", "/")
    path = PurePosixPath(cleaned)
    if not cleaned or path.is_absolute() or ":" in path.parts[0] or any(p in ("", ".", "..") for p in path.parts):
        raise ValueError(f"output {name!r} must be a relative name inside the output folder (no '..')")
    if any(p.startswith(".") for p in path.parts):
        raise ValueError(f"output {name!r} must not start with '.' (hidden names are the batch's own)")
    return path.as_posix()


def _check_unique_outputs(lines: list[BatchLine]) -> None:
    """Two lines must never write the same file (compared case-insensitively, as macOS and Windows do)."""
    seen: dict[str, BatchLine] = {}
    clashes = []
    for line in lines:
        key = line.output.lower()
        if key in seen:
            clashes.append(f"lines {seen[key].number} and {line.number} both write {line.output!r}")
        else:
            seen[key] = line
    if clashes:
        more = f"; and {len(clashes) - 3} more" if len(clashes) > 3 else ""
        raise ManifestError(f"Output names must be unique: {'; '.join(clashes[:3])}{more}; give each line an "
                            "'output' name.")

