"""The job parameters in-process: one field list, equal to the protocol's, and the parser's rules."""

from __future__ import annotations

import dataclasses
import json

import pytest

from jambatalk_blender.core import protocol
from model_core.worker.params import MAX_WAIT_SECONDS, JobParams, parse_params, parse_wait


def test_job_params_are_the_protocol_fields() -> None:
    assert tuple(spec.name for spec in dataclasses.fields(JobParams)) == protocol.PARAM_FIELDS


@pytest.mark.parametrize("raw", [None, "", "  ", "{}"])
def test_no_params_means_every_default(raw: str | None) -> None:
    assert parse_params(raw) == JobParams()
    assert JobParams() == JobParams(model=None, subject=None, start_s=0.0, end_s=None, strength=1.0,
                                    smoothing_s=0.0, dtype="float32", client="anonymous", output="vertices")


def test_null_and_blank_values() -> None:
    # A null number is its default; a null or empty client is "anonymous"; a null choice is refused.
    params = parse_params(json.dumps({"start_s": None, "strength": None, "client": "", "model": None}))
    assert params.start_s == 0.0 and params.strength == 1.0 and params.client == "anonymous" and params.model is None
    assert parse_params(json.dumps({"client": None})).client == "anonymous"
    with pytest.raises(ValueError, match="Parameter dtype must be 'float32' or 'float16'"):
        parse_params(json.dumps({"dtype": None}))


def test_values_are_checked_in_field_order_then_the_choices() -> None:
    with pytest.raises(ValueError, match="Parameter strength must be between 0 and 4; got 5"):
        parse_params(json.dumps({"strength": 5, "start_s": 1, "dtype": "int8"}))
    with pytest.raises(ValueError, match="Parameter start_s must be a finite number"):
        parse_params(json.dumps({"strength": 5, "start_s": True}))
    with pytest.raises(ValueError, match="Parameter output must be"):  # output is checked before dtype
        parse_params(json.dumps({"dtype": "int8", "output": "mesh"}))
    with pytest.raises(ValueError, match=r"Unknown parameter\(s\): 'colour', 'size'"):
        parse_params(json.dumps({"size": 1, "colour": 2, "strength": 9}))


def test_job_params_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        JobParams().strength = 2.0  # type: ignore[misc]


def test_wait_is_capped() -> None:
    assert parse_wait("2.5") == 2.5 and parse_wait("1e9") == MAX_WAIT_SECONDS
    with pytest.raises(ValueError, match="finite number of seconds"):
        parse_wait("nan")
