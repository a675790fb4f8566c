"""Input and output processing (ASL "Input and Output Processing", "Transforming data with
JSONata"): InputPath, ResultSelector, ResultPath, OutputPath, ``Assign`` and JSONata ``Output``
(``Assign``, ``Output`` and the fields an expression or a path gives are compiled
:mod:`runtime.definition.values`, evaluated here over a state's bindings).

Imports only the standard library, ``runtime.errors``, ``runtime.lang``,
``runtime.definition.model`` and ``runtime.core``.
"""

from __future__ import annotations

from typing import Any

from runtime.core.session import Session, StateBindings, StateFailure
from runtime.core.state import Frame
from runtime.definition.model import Map, Parallel, State, Task
from runtime.definition.values import Value
from runtime.errors import StatesError
from runtime.lang.paths import Path, PathNotFound, apply_result_path

__all__ = ["DataFlow"]

JSON = Any


class DataFlow(Session):
    """Input and output processing, in both query languages."""

    def effective_input(self, frame: Frame, state: State) -> JSON:
        """InputPath (ASL "InputPath"): the part of the raw input a state works on; JSON null gives
        ``{}``."""
        io = state.io
        if io.input_path_null:
            return {}
        if io.input_path is None:
            return frame.data
        return self.select(io.input_path, frame.data, frame, "InputPath")

    def select(self, path: Path, data: JSON, frame: Frame, field: str) -> JSON:
        """A reference path over ``data`` (InputPath, OutputPath, the ...Path fields); a path that
        matches nothing fails the state with States.Runtime."""
        if path.text == "$":  # the default InputPath/OutputPath: identity, no scope needed
            return data
        try:
            return path.evaluate(data, self.scope(frame))
        except PathNotFound as missing:
            raise StateFailure("States.Runtime", self.cause(frame, str(missing))) from None

    def output(self, frame: Frame, state: State, result: JSON) -> JSON:
        """ResultPath then OutputPath, applied to the state's raw input."""
        io = state.io
        if io.result_path_null:
            merged = frame.data
        elif io.result_path is None:
            merged = result
        else:
            try:
                merged = apply_result_path(io.result_path, frame.data, result)
            except StatesError as error:
                raise StateFailure(error.error, self.cause(frame, error.cause)) from None
        return self.output_path(frame, state, merged)

    def output_path(self, frame: Frame, state: State, data: JSON) -> JSON:
        """OutputPath (ASL "OutputPath"): the part of ``data`` passed on; JSON null gives ``{}``."""
        io = state.io
        if io.output_path_null:
            return {}
        if io.output_path is None:
            return data
        return self.select(io.output_path, data, frame, "OutputPath")

    def assigned(self, value: Value | None, bindings: StateBindings) -> dict[str, JSON] | None:
        """``Assign`` (ASL "Assign"), compiled at load time: a payload template over
        ``bindings.data`` (JSONPath: the state's result, or its effective input for Choice and
        Wait, or the error output in a Catcher) or a JSONata template; either reads the
        variables as they were when the state was entered."""
        if value is None:
            return None
        values: dict[str, JSON] = value.evaluate(bindings)
        return values

    def exit_state(
        self,
        frame: Frame,
        state: State,
        bindings: StateBindings,
        result: JSON,
        next_state: str | None,
    ) -> None:
        """Leave a state, in either query language: its ``Assign``, then its output: the
        JSONata ``Output`` when given, else ``result`` through ResultPath and OutputPath
        (identities in JSONata, which has no paths). Assign and Output read the same
        ``$states`` and variables, so neither sees the values being assigned."""
        assigned = self.assigned(state.assign_value, bindings)
        output = state.output_value
        value = self.output(frame, state, result) if output is None else output.evaluate(bindings)
        self.exit(frame, state, value, next_state, assigned)

    def finish_with_result(self, frame: Frame, state: State, result: JSON) -> None:
        """A Task's, Parallel's or Map's result: ResultSelector, Assign, then ResultPath and
        OutputPath (JSONPath) or Output (JSONata)."""
        assert isinstance(state, Task | Parallel | Map)
        raw = result
        if state.result_selector is not None:
            result = state.result_selector.evaluate(result, self.scope(frame))
        # JSONPath values read the (selected) result; JSONata ones $states.result.
        self.exit_state(frame, state, self.bindings(frame, result, result=raw), result, state.next)
