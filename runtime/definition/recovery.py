"""Retry and Catch: a state's error handling fields compiled into retriers and catchers.

Responsibility: ``Retry`` (ASL "Retrying after error") into
:class:`~runtime.definition.model.Retrier` values with the spec's defaults (``IntervalSeconds``
1, ``MaxAttempts`` 3, ``BackoffRate`` 2.0), and ``Catch`` (ASL "Fallback states") into
:class:`~runtime.definition.model.Catcher` values (``ResultPath`` absent means ``$``; JSONata
catchers take ``Output``, JSONPath ones ``ResultPath``). ``States.ALL`` must stand alone and
come last (``validate.check_states_all``).

This module is pure; it imports only the standard library, ``runtime.definition`` and
``runtime.lang.paths``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, cast

from runtime.definition import validate
from runtime.definition.fields import MAX_TIMEOUT, ROOT_PATH, Fields, fail
from runtime.definition.model import Catcher, Retrier
from runtime.lang.paths import Path

__all__ = ["load_catch", "load_retry"]

_RETRIER_FIELDS: Final = frozenset(
    {
        "ErrorEquals",
        "IntervalSeconds",
        "MaxAttempts",
        "BackoffRate",
        "MaxDelaySeconds",
        "JitterStrategy",
        "Comment",
    }
)
_CATCHER_FIELDS: Final = frozenset(
    {"ErrorEquals", "Next", "ResultPath", "Assign", "Output", "Comment"}
)


def _error_equals(fields: Fields) -> tuple[str, ...]:
    fields.require("ErrorEquals")
    names = fields.array("ErrorEquals", non_empty=True)
    assert names is not None
    for name in names:
        if not isinstance(name, str):
            raise fields.wrong_type("ErrorEquals", "ARRAY of STRING")
    return tuple(names)


def load_retry(fields: Fields) -> tuple[Retrier, ...]:
    """``Retry`` (ASL "Retrying after error"), with the spec's defaults."""
    raw = fields.array("Retry")
    if raw is None:
        return ()
    retriers = []
    for index, item in enumerate(raw):
        pointer = f"{fields.at('Retry')}[{index}]"
        if not isinstance(item, Mapping):
            raise fail("The value must be an OBJECT", pointer)
        inner = Fields(item, pointer)
        for name in item:
            if name not in _RETRIER_FIELDS:
                raise fail(f"Field '{name}' is not supported", pointer)
        error_equals = _error_equals(inner)
        validate.check_states_all(error_equals, index == len(raw) - 1, "Retry", pointer)
        interval = inner.integer("IntervalSeconds", minimum=1, maximum=MAX_TIMEOUT)
        attempts = inner.integer("MaxAttempts", minimum=0, maximum=MAX_TIMEOUT)
        backoff = inner.number("BackoffRate", 1.0)
        max_delay = inner.integer("MaxDelaySeconds", minimum=1, maximum=MAX_TIMEOUT)
        jitter = inner.string("JitterStrategy")
        if jitter is not None and jitter not in ("FULL", "NONE"):
            raise fail(
                "The value for the field 'JitterStrategy' must be one of [FULL, NONE]",
                pointer,
            )
        retriers.append(
            Retrier(
                error_equals=error_equals,
                interval_seconds=1 if interval is None else interval,
                max_attempts=3 if attempts is None else attempts,
                backoff_rate=2.0 if backoff is None else backoff,
                max_delay_seconds=max_delay,
                jitter_strategy=cast("Literal['FULL', 'NONE']", jitter or "NONE"),
            )
        )
    return tuple(retriers)


def load_catch(fields: Fields, jsonpath: bool) -> tuple[Catcher, ...]:
    """``Catch`` (ASL "Fallback states"): ``ResultPath`` absent means ``$``."""
    raw = fields.array("Catch")
    if raw is None:
        return ()
    language = "JSONPath" if jsonpath else "JSONata"
    foreign = "Output" if jsonpath else "ResultPath"
    catchers = []
    for index, item in enumerate(raw):
        pointer = f"{fields.at('Catch')}[{index}]"
        if not isinstance(item, Mapping):
            raise fail("The value must be an OBJECT", pointer)
        inner = Fields(item, pointer)
        for name in item:
            if name not in _CATCHER_FIELDS:
                raise fail(f"Field '{name}' is not supported", pointer)
            if name == foreign:
                raise fail(validate.language_mismatch(name, language), pointer)
        error_equals = _error_equals(inner)
        validate.check_states_all(error_equals, index == len(raw) - 1, "Catch", pointer)
        inner.require("Next")
        next_state = inner.string("Next")
        assert next_state is not None
        result_path: Path | None = ROOT_PATH
        if "ResultPath" in item:
            result_path = None if item["ResultPath"] is None else inner.path("ResultPath")
            if result_path is not None and (result_path.is_context or result_path.variable):
                raise inner.invalid_path("ResultPath", "ReferencePath")
        catchers.append(
            Catcher(
                error_equals=error_equals,
                next=next_state,
                result_path=result_path,
                result_path_set="ResultPath" in item,
                assign_value=inner.assign(language),
                output_value=inner.output(language),
            )
        )
    return tuple(catchers)
