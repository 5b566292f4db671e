"""The parameters of a job (the X-JambaTalk-Params JSON header) and of a long poll, parsed and range-checked.

`JobParams` is the one list of the job parameters: each field carries its default and its limits, and the parser
reads them from there. The field names are the protocol's (`protocol.PARAM_FIELDS`, shared with the extension's
client); an import-time check keeps the two lists equal.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields

from jambatalk_blender.core import protocol

PARAMS_HEADER = protocol.PARAMS_HEADER.lower()  # ASGI header names are lower case
MAX_PARAMS_BYTES = 16 * 1024
MAX_WAIT_SECONDS = 60.0  # the longest a long-polling GET /jobs/{id}?wait=S is held
DTYPES = ("float32", "float16")


def _number(default: float | None, low: float, high: float):
    """A number field: absent or JSON null means `default`; it must be finite and within [low, high]."""
    return field(default=default, metadata={"range": (low, high)})


def _text(default: str | None, max_len: int = 64, *, blank_is_default: bool = False):
    """A text field: absent means `default`, JSON null means None (or `default` with blank_is_default)."""
    return field(default=default, metadata={"max_len": max_len, "blank_is_default": blank_is_default})


@dataclass(frozen=True)
class JobParams:
    """One job's parameters, checked: what POST /jobs asks of the worker besides the audio."""

    model: str | None = _text(None, 256)  # None: the first model that loaded
    subject: str | None = _text(None, 256)  # a style the model was trained with; None: their average
    start_s: float = _number(0.0, 0.0, 86400.0)  # the range of the audio to animate
    end_s: float | None = _number(None, 0.0, 86400.0)
    strength: float = _number(1.0, 0.0, 4.0)
    smoothing_s: float = _number(0.0, 0.0, 1.0)
    dtype: str = _text("float32")
    client: str = _text("anonymous", blank_is_default=True)  # the fair queue's key
    output: str = _text("vertices")

    def __post_init__(self) -> None:
        if self.output not in protocol.OUTPUTS:
            raise ValueError("Parameter output must be 'vertices' (offsets, T x V x 3) or 'weights' (T x K).")
        if self.dtype not in DTYPES:
            raise ValueError("Parameter dtype must be 'float32' or 'float16'.")


if tuple(spec.name for spec in fields(JobParams)) != protocol.PARAM_FIELDS:
    raise AssertionError("JobParams and protocol.PARAM_FIELDS list different parameters; keep them equal.")


def _read_json_object(raw: str | None) -> dict:
    if raw is None or raw.strip() == "":
        return {}
    if len(raw.encode("utf-8", "replace")) > MAX_PARAMS_BYTES:
        raise ValueError("The X-JambaTalk-Params header is longer than 16 KiB.")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"X-JambaTalk-Params is not valid JSON ({exc.msg}).") from None
    except (ValueError, RecursionError):  # a number of over 4300 digits; nesting deeper than the stack
        raise ValueError("X-JambaTalk-Params is not usable JSON (too deeply nested, or too long a number).") \
            from None
    if not isinstance(data, dict):
        raise ValueError("X-JambaTalk-Params must be a JSON object.")
    return data


def _number_value(data: dict, key: str, default: float | None, low: float, high: float) -> float | None:
    value = data.get(key)
    if value is None:  # absent or JSON null: the default (a null start_s once reached crop_seconds: 500)
        value = default
        if value is None:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"Parameter {key} must be a finite number.")
    try:
        value = float(value)  # a huge JSON integer overflows here (math.isfinite would raise OverflowError)
    except OverflowError:
        raise ValueError(f"Parameter {key} must be a finite number.") from None
    if not math.isfinite(value):
        raise ValueError(f"Parameter {key} must be a finite number.")
    if not low <= value <= high:
        raise ValueError(f"Parameter {key} must be between {low:g} and {high:g}; got {value:g}.")
    return value


def _text_value(data: dict, key: str, default: str | None, max_len: int) -> str | None:
    value = data.get(key, default)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise ValueError(f"Parameter {key} must be a string of at most {max_len} characters.")
    return value


def parse_params(raw: str | None) -> JobParams:
    """The X-JambaTalk-Params header's JSON (None or blank: every default), checked; raises ValueError with a
    sentence naming the first problem."""
    data = _read_json_object(raw)
    unknown = sorted(set(data) - set(protocol.PARAM_FIELDS))
    if unknown:
        # ascii(): the names are the client's text and may hold lone surrogates, which UTF-8 cannot encode.
        raise ValueError(f"Unknown parameter(s): {', '.join(ascii(k) for k in unknown)}.")
    values = {}
    for spec in fields(JobParams):
        if "range" in spec.metadata:
            values[spec.name] = _number_value(data, spec.name, spec.default, *spec.metadata["range"])
        else:
            value = _text_value(data, spec.name, spec.default, spec.metadata["max_len"])
            values[spec.name] = value or spec.default if spec.metadata["blank_is_default"] else value
    return JobParams(**values)


def parse_wait(raw: str) -> float:
    """The `wait` query parameter of GET /jobs/{id}: seconds to hold the reply, 0..MAX_WAIT_SECONDS (capped)."""
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"Query parameter wait must be a number of seconds; got {raw[:40]!r}.") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError("Query parameter wait must be a finite number of seconds, 0 or more.")
    return min(value, MAX_WAIT_SECONDS)
