"""A distributed Map's ItemReader (``Parameters``/``Arguments``, ``ReaderConfig.MaxItemsPath``
or a JSONata ``MaxItems``) and ResultWriter (``Parameters``/``Arguments``), each one compiled
value read by one rule in both query languages (issue 10): the reader and writer the shell is
given, and every failure's cause, are the same whichever language wrote them."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.core.effects import ITEM_READER, RESULT_WRITER, ItemRead, ResultWrite, RunTask
from runtime.core.events import HistoryEvent
from runtime.definition.model import Map, StateMachine
from runtime.definition.values import Expression, PayloadTemplate, Reference, Template
from tests.core.core_support import Driver, Outcome, machine_of

JSON = Any

GET_OBJECT = "arn:aws:states:::s3:getObject"
PUT_OBJECT = "arn:aws:states:::s3:putObject"
PREFIX = "An error occurred while executing the state 'M' (entered at the event id #2). "

JSONPATH_READER = {
    "Resource": GET_OBJECT,
    "Parameters": {"Bucket.$": "$.bucket", "Key": "rows.json"},
    "ReaderConfig": {"InputType": "JSON", "MaxItemsPath": "$.limit"},
}
JSONATA_READER = {
    "Resource": GET_OBJECT,
    "Arguments": {"Bucket": "{% $states.input.bucket %}", "Key": "rows.json"},
    "ReaderConfig": {"InputType": "JSON", "MaxItems": "{% $states.input.limit %}"},
}
JSONPATH_WRITER = {"Resource": PUT_OBJECT, "Parameters": {"Bucket.$": "$.bucket", "Prefix": "out"}}
JSONATA_WRITER = {
    "Resource": PUT_OBJECT,
    "Arguments": {"Bucket": "{% $states.input.bucket %}", "Prefix": "out"},
}


def _machine(language: str, reader: JSON, writer: JSON = None) -> StateMachine:
    state: dict[str, JSON] = {
        "Type": "Map",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "P",
            "States": {"P": {"Type": "Pass", "End": True}},
        },
        "ItemReader": reader,
        "End": True,
    }
    if writer is not None:
        state["ResultWriter"] = writer
    return machine_of({"QueryLanguage": language, "StartAt": "M", "States": {"M": state}})


class Shell:
    """Answers the reads (two items) and the write, keeping what each was asked."""

    def __init__(self) -> None:
        self.readers: list[JSON] = []
        self.writers: list[JSON] = []

    def __call__(self, task: RunTask) -> Outcome:
        if task.resource == ITEM_READER:
            assert isinstance(task.input, ItemRead)
            self.readers.append(task.input.reader)
            items = [{"row": 1}, {"row": 2}][task.input.start :]
            return ("succeeded", {"items": items, "total": 2})
        assert task.resource == RESULT_WRITER
        assert isinstance(task.input, ResultWrite)
        self.writers.append(task.input.writer)
        return ("succeeded", {"written": True})


def _failure(history: list[HistoryEvent]) -> tuple[str, str]:
    last = history[-1]
    assert last.type == "ExecutionFailed", last.type
    return last.details["error"], last.details["cause"]


def test_the_loader_compiles_the_reader_and_writer_fields_into_one_value_each() -> None:
    jsonpath = _machine("JSONPath", JSONPATH_READER, JSONPATH_WRITER).states["M"]
    jsonata = _machine("JSONata", JSONATA_READER, JSONATA_WRITER).states["M"]
    assert isinstance(jsonpath, Map)
    assert isinstance(jsonata, Map)

    assert isinstance(jsonpath.item_reader_max_items, Reference)
    assert jsonpath.item_reader_max_items.path.text == "$.limit"
    assert isinstance(jsonata.item_reader_max_items, Expression)
    assert jsonata.item_reader_max_items.expression.text == "$states.input.limit"
    assert isinstance(jsonpath.item_reader_arguments, PayloadTemplate)
    assert isinstance(jsonpath.result_writer_arguments, PayloadTemplate)
    assert isinstance(jsonata.item_reader_arguments, Template)
    assert isinstance(jsonata.result_writer_arguments, Template)
    # The value names the key the shell is given.
    assert [v.field for v in (jsonpath.item_reader_arguments, jsonata.item_reader_arguments)] == [
        "Parameters",
        "Arguments",
    ]


def test_a_constant_max_items_stays_in_the_reader_for_the_shell_to_check() -> None:
    reader = {"Resource": GET_OBJECT, "ReaderConfig": {"InputType": "JSON", "MaxItems": 1}}
    for language in ("JSONPath", "JSONata"):
        state = _machine(language, reader).states["M"]
        assert isinstance(state, Map)
        assert state.item_reader_max_items is None
        assert state.item_reader_arguments is None

        shell = Shell()
        history, _ = Driver(_machine(language, reader), shell).run({})

        assert history[-1].type == "ExecutionSucceeded"
        assert shell.readers[0] == reader


@pytest.mark.parametrize(
    ("language", "reader", "writer", "key"),
    [
        ("JSONPath", JSONPATH_READER, JSONPATH_WRITER, "Parameters"),
        ("JSONata", JSONATA_READER, JSONATA_WRITER, "Arguments"),
    ],
)
def test_both_languages_give_the_shell_the_same_resolved_reader_and_writer(
    language: str, reader: JSON, writer: JSON, key: str
) -> None:
    shell = Shell()

    history, _ = Driver(_machine(language, reader, writer), shell).run({"bucket": "in", "limit": 2})

    assert history[-1].type == "ExecutionSucceeded"
    expected_reader = {
        "Resource": GET_OBJECT,
        key: {"Bucket": "in", "Key": "rows.json"},
        "ReaderConfig": {"InputType": "JSON", "MaxItems": 2},
    }
    assert shell.readers[0] == expected_reader
    assert shell.writers == [{"Resource": PUT_OBJECT, key: {"Bucket": "in", "Prefix": "out"}}]
    (map_started,) = (event for event in history if event.type == "MapStateStarted")
    assert map_started.details["statemillItemReader"] == expected_reader


def test_a_max_items_path_holding_an_integer_as_text_is_parsed() -> None:
    shell = Shell()

    Driver(_machine("JSONPath", JSONPATH_READER), shell).run({"bucket": "in", "limit": "2"})

    assert shell.readers[0]["ReaderConfig"] == {"InputType": "JSON", "MaxItems": 2}


@pytest.mark.parametrize(
    ("input", "error", "detail"),
    [
        (
            {"bucket": "in", "limit": 1.5},
            "States.Runtime",
            'The MaxItemsPath field refers to value "1.5" which is not a valid integer: $.limit',
        ),
        (
            {"bucket": "in", "limit": 2**31},
            "States.Runtime",
            'The MaxItemsPath field refers to value "2147483648" which is not a valid integer: '
            "$.limit",
        ),
        (
            {"bucket": "in"},
            "States.Runtime",
            "Invalid path '$.limit' : No results for path: $['limit']",
        ),
    ],
)
def test_a_max_items_path_that_gives_no_integer_fails_the_map(
    input: JSON, error: str, detail: str
) -> None:
    history, _ = Driver(_machine("JSONPath", JSONPATH_READER), Shell()).run(input)

    assert _failure(history) == (error, PREFIX + detail)


@pytest.mark.parametrize(
    ("limit", "detail"),
    [
        (
            -1,
            "The JSONata expression '$states.input.limit' specified for the field 'MaxItems' "
            "returned a value smaller than 0: -1",
        ),
        (
            2**31,
            "The JSONata expression '$states.input.limit' specified for the field 'MaxItems' "
            "returned a value larger than 2147483647: 2147483648",
        ),
    ],
)
def test_a_jsonata_max_items_out_of_range_fails_with_query_evaluation_error(
    limit: int, detail: str
) -> None:
    history, _ = Driver(_machine("JSONata", JSONATA_READER), Shell()).run(
        {"bucket": "in", "limit": limit}
    )

    assert _failure(history) == ("States.QueryEvaluationError", PREFIX + detail)
    assert "EvaluationFailed" in [event.type for event in history]
