"""The event loop's slice (issue 11, ``runtime.lang.jsonata_slice``): within a slice, a
decision's JSONata evaluations together take at most its milliseconds, and one that would take
longer raises ``SliceExceeded`` (for the engine to decide the step in the slow lane) instead of
failing with ``States.QueryEvaluationError``; time outside the evaluations is not counted."""

from __future__ import annotations

import time

import pytest

from runtime.lang.jsonata import compile_expression
from runtime.lang.jsonata_engine import QueryEvaluationError
from runtime.lang.jsonata_functions import Env
from runtime.lang.jsonata_slice import SliceExceeded, current_slice, loop_slice, spent

#: Some tens of milliseconds of evaluation (90,000 lambda calls).
HEAVY = compile_expression(
    "{% $sum($map([1..300], function($i) { $count($map([1..300], function($j) { $i * $j })) })) %}"
)
CHEAP = compile_expression("{% $states.input.n + 1 %}")
#: About a millisecond.
MEDIUM = compile_expression("{% $count($map([1..3000], function($v) { $v })) %}")
#: Past any budget.
ENDLESS = compile_expression("{% ($f := function($n) { $f($n + 1) + 1 }; $f(0)) %}")


def env() -> Env:
    return Env({"input": {"n": 1}})


def test_outside_a_slice_an_evaluation_has_its_full_budget() -> None:
    assert current_slice() is None
    assert not spent()
    assert HEAVY.evaluate(env(), "Output") == 90_000


def test_an_evaluation_past_the_slice_raises_slice_exceeded_not_a_state_error() -> None:
    with loop_slice(1), pytest.raises(SliceExceeded):
        HEAVY.evaluate(env(), "Output")
    with loop_slice(1), pytest.raises(SliceExceeded):
        ENDLESS.evaluate(env(), "Output")


def test_a_guarded_function_s_nested_evaluation_past_the_slice_raises_slice_exceeded() -> None:
    # $string of a container is measured by an evaluation of its own, nested in this one.
    text = "{% $string($map([1..20000], function($v) { [$v, $states.input] })) ~> $length() %}"
    with loop_slice(1), pytest.raises(SliceExceeded):
        compile_expression(text).evaluate(env(), "Output")


def test_past_the_budget_outside_a_slice_is_the_state_s_error() -> None:
    with pytest.raises(QueryEvaluationError):
        ENDLESS.evaluate(env(), "Output")


def test_the_slice_counts_the_evaluations_together() -> None:
    with loop_slice(50):
        assert CHEAP.evaluate(env(), "Output") == 2
        assert not spent()
        evaluated = 0
        try:
            for _ in range(1000):  # each within what is left; together past it
                assert MEDIUM.evaluate(env(), "Output") == 3000
                evaluated += 1
        except SliceExceeded:
            pass
        assert 1 <= evaluated < 1000
        assert spent()
        with pytest.raises(SliceExceeded):  # spent: no evaluation starts
            CHEAP.evaluate(env(), "Output")


def test_time_between_evaluations_is_not_counted() -> None:
    with loop_slice(20):
        time.sleep(0.05)  # the rest of the decision: not JSONata
        assert not spent()
        current = current_slice()
        assert current is not None
        assert current.left_now() == 20
        assert CHEAP.evaluate(env(), "Output") == 2


def test_the_guards_own_names_are_reserved() -> None:
    # $__statemill_string is the engine's unguarded $string, bound by the guard's prelude.
    with pytest.raises(ValueError, match="reserved"):
        compile_expression("{% $__statemill_string([1]) & $string(1) %}")
