"""Input and output processing (ASL "Input and Output Processing", "Transforming data with
JSONata"): InputPath, ResultSelector, ResultPath, OutputPath, ``Assign`` and JSONata ``Output``
(the numeric fields an expression or a path gives are :mod:`runtime.definition.values`'s).

Imports only the standard library, ``runtime.errors``, ``runtime.lang``,
``runtime.definition.model`` and ``runtime.core``.
"""

from __future__ import annotations

from typing import Any

from runtime.core.session import Session, StateFailure
from runtime.core.state import Frame
from runtime.definition.model import Map, Parallel, State, Task
from runtime.errors import StatesError
from runtime.lang.jsonata import evaluate_template
from runtime.lang.jsonata_functions import Env
from runtime.lang.paths import Path, PathNotFound, apply_result_path
from runtime.lang.payload import Payload

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

    def assign_jsonpath(
        self, frame: Frame, payload: Payload | None, data: JSON
    ) -> dict[str, JSON] | None:
        """JSONPath ``Assign``, compiled at load time (``assign_payload``): a payload template
        over ``data`` (the state's result, or its effective input for Choice and Wait, or the
        error output in a Catcher); ``$name`` reads the variables as they were when the state
        was entered."""
        if payload is None:
            return None
        value: dict[str, JSON] = payload.evaluate(data, self.scope(frame))
        return value

    def exit_jsonata(
        self,
        frame: Frame,
        state: State,
        env: Env,
        default: JSON,
        next_state: str | None,
        *,
        output: JSON = None,
        has_output: bool = False,
        assign: tuple[JSON, ...] = (),
    ) -> None:
        """Leave a JSONata state: ``Assign`` then ``Output`` (default ``default``), both over the
        same ``$states`` and variables, so neither sees the values being assigned."""
        assigned: dict[str, JSON] | None = None
        for template in assign:
            if template is not None:
                values = evaluate_template(template, env, "Assign")
                assigned = values if assigned is None else {**assigned, **values}
        result = evaluate_template(output, env, "Output") if has_output else default
        self.exit(frame, state, result, next_state, assigned)

    def exit_state_jsonata(
        self, frame: Frame, state: State, env: Env, default: JSON, next_state: str | None
    ) -> None:
        """:meth:`exit_jsonata` with the state's own ``Output`` and ``Assign``."""
        self.exit_jsonata(
            frame,
            state,
            env,
            default,
            next_state,
            output=state.output,
            has_output=state.has_output,
            assign=(state.assign,),
        )

    def finish_with_result(self, frame: Frame, state: State, result: JSON) -> None:
        """ResultSelector, ResultPath, OutputPath for Task, Parallel and Map."""
        assert isinstance(state, Task | Parallel | Map)
        if state.query_language == "JSONata":
            env = self.jsonata_env(frame, result=result)
            self.exit_state_jsonata(frame, state, env, result, state.next)
            return
        if state.result_selector is not None:
            result = state.result_selector.evaluate(result, self.scope(frame))
        assigned = self.assign_jsonpath(frame, state.assign_payload, result)
        self.exit(frame, state, self.output(frame, state, result), state.next, assigned)
