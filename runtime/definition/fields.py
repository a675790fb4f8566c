"""Typed, pointer-aware reads of a definition's fields, and the field groups states share.

Responsibility: :class:`Fields` reads one JSON object's fields with AWS's schema messages
(``The value for the field 'X' must be a STRING``, ``... is required but was missing``, ...)
and compiles path and payload fields as it reads them; the groups several state types share:
the input/output paths (:func:`io_paths`), the fields of a state that does work
(:func:`work_fields`), ``Assign`` and the transition (``Next``/``End``).

Every error is an :class:`~runtime.errors.InvalidDefinition` (``SCHEMA_VALIDATION_FAILED``)
carrying the JSON Pointer of the object read. This module is pure; it imports only the
standard library, ``runtime.errors``, ``runtime.definition`` and ``runtime.lang``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from runtime.definition import validate
from runtime.definition.model import IOPaths
from runtime.definition.values import Expression, PayloadTemplate, Template, Value
from runtime.errors import InvalidDefinition
from runtime.lang.jsonata import compile_expression, is_expression
from runtime.lang.paths import Path
from runtime.lang.payload import Payload

__all__ = [
    "MAX_TIMEOUT",
    "ROOT_PATH",
    "Fields",
    "compile_path",
    "fail",
    "io_paths",
    "is_expr",
    "payload_value",
    "template_value",
    "work_fields",
]

JSON = Any

_SCHEMA: Final = validate.SCHEMA
#: The largest ``TimeoutSeconds``/``HeartbeatSeconds``/``IntervalSeconds`` AWS accepts.
MAX_TIMEOUT: Final = 99_999_999


def fail(detail: str, pointer: str) -> InvalidDefinition:
    return InvalidDefinition(_SCHEMA, detail, pointer or "/")


def is_expr(value: JSON) -> bool:
    """A JSONata ``{% ... %}`` string (exactly: AWS treats ``" {% x %} "`` as a constant)."""
    return is_expression(value)


def template_value(field: str, template: JSON) -> Value:
    """A JSONata field that may be a template (``Items``, ``Output``, ``Assign``, ...): one
    expression, or any JSON whose ``{% %}`` strings are expressions (compiled with the
    state)."""
    if is_expr(template):
        return Expression(field=field, expression=compile_expression(template))
    return Template.of(field, template)


def payload_value(field: str, payload: Payload | None) -> Value | None:
    """A JSONPath payload template field (``ItemSelector``, ``BatchInput``) as a value."""
    return None if payload is None else PayloadTemplate(field=field, payload=payload)


def _is_int(value: JSON) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


class Fields:
    """Typed, pointer-aware reads of one JSON object's fields."""

    __slots__ = ("pointer", "raw")

    def __init__(self, raw: Mapping[str, JSON], pointer: str) -> None:
        self.raw = raw
        self.pointer = pointer

    def at(self, field: str) -> str:
        return f"{self.pointer}/{validate.escape_pointer(field)}"

    def wrong_type(self, field: str, kind: str) -> InvalidDefinition:
        article = "an" if kind[0] in "AEIOU" else "a"
        return fail(f"The value for the field '{field}' must be {article} {kind}", self.pointer)

    def require(self, *fields: str) -> None:
        for field in fields:
            if field not in self.raw:
                raise fail(f"The field '{field}' is required but was missing", self.pointer)

    def string(self, field: str) -> str | None:
        value = self.raw.get(field)
        if value is None and field not in self.raw:
            return None
        if not isinstance(value, str):
            raise self.wrong_type(field, "STRING")
        return value

    def boolean(self, field: str) -> bool | None:
        if field not in self.raw:
            return None
        value = self.raw[field]
        if not isinstance(value, bool):
            raise self.wrong_type(field, "BOOLEAN")
        return value

    def integer(self, field: str, minimum: int = 0, maximum: int | None = None) -> int | None:
        if field not in self.raw:
            return None
        value = self.raw[field]
        if not _is_int(value):
            raise self.wrong_type(field, "INTEGER")
        number = int(value)
        if number < minimum:
            raise fail(
                f"The value for the field '{field}' must be greater than or equal to {minimum}",
                self.pointer,
            )
        if maximum is not None and number > maximum:
            raise fail(
                f"The value for the field '{field}' must be less than or equal to {maximum}",
                self.pointer,
            )
        return number

    def number(self, field: str, minimum: float, maximum: float | None = None) -> float | None:
        if field not in self.raw:
            return None
        value = self.raw[field]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.wrong_type(field, "NUMBER")
        if value < minimum or (maximum is not None and value > maximum):
            bounds = (
                f"between {minimum:g} and {maximum:g}"
                if maximum is not None
                else (f"greater than or equal to {minimum:g}")
            )
            raise fail(f"The value for the field '{field}' must be {bounds}", self.pointer)
        return float(value)

    def mapping(self, field: str) -> Mapping[str, JSON] | None:
        if field not in self.raw:
            return None
        value = self.raw[field]
        if not isinstance(value, Mapping):
            raise self.wrong_type(field, "OBJECT")
        return value

    def array(self, field: str, *, non_empty: bool = False) -> list[JSON] | None:
        if field not in self.raw:
            return None
        value = self.raw[field]
        if not isinstance(value, list):
            raise self.wrong_type(field, "ARRAY")
        if non_empty and not value:
            raise fail(f"The field '{field}' must have at least 1 item", self.pointer)
        return value

    def path(self, field: str, *, reference: bool = True) -> Path | None:
        """A path field (``InputPath``, ``ItemsPath``, ``SecondsPath``, ...); ``None`` if absent.

        Every path field but ``InputPath``/``OutputPath`` must be a Reference Path.
        """
        text = self.string(field)
        if text is None:
            return None
        return compile_path(text, field, self.pointer, reference=reference)

    def invalid_path(self, field: str, kind: str) -> InvalidDefinition:
        return fail(f"The value for the field '{field}' must be a valid {kind}", self.pointer)

    def payload(self, field: str) -> Payload | None:
        if field not in self.raw:
            return None
        template = self.raw[field]
        if not isinstance(template, Mapping):
            raise self.wrong_type(field, "OBJECT")
        return Payload.compile(template, self.at(field))

    def exclusive(self, *fields: str) -> None:
        present = [field for field in fields if field in self.raw]
        if len(present) > 1:
            raise fail(
                f"The fields '{present[0]}' and '{present[1]}' are mutually exclusive",
                self.pointer,
            )

    def assign(self, language: str) -> Value | None:
        """``Assign`` (workflow variables) as one value: in JSONPath a payload template (its
        ``.$`` values must be valid paths or intrinsic calls), in JSONata a template (its
        ``{% %}`` strings compiled with the state); ``None`` when absent."""
        if "Assign" not in self.raw:
            return None
        value = self.raw["Assign"]
        if not isinstance(value, Mapping):
            raise self.wrong_type("Assign", "OBJECT")
        if language == "JSONPath":
            return PayloadTemplate(
                field="Assign", payload=Payload.compile(value, self.at("Assign"))
            )
        return template_value("Assign", value)

    def output(self, language: str) -> Value | None:
        """A JSONata ``Output`` (which may be JSON null) as one value; ``None`` when absent and
        in JSONPath (whose states and catchers have no ``Output``)."""
        if language == "JSONPath" or "Output" not in self.raw:
            return None
        return template_value("Output", self.raw["Output"])

    def transition(self) -> dict[str, Any]:
        """``Next`` xor ``End: true`` (ASL "Transitions")."""
        next_state = self.string("Next")
        end = self.boolean("End")
        if next_state is not None and end:
            raise fail("The fields 'Next' and 'End' are mutually exclusive", self.pointer)
        if next_state is None and not end:
            raise fail("This state must have either a 'Next' or an 'End' field", self.pointer)
        return {"next": next_state, "end": bool(end)}


def compile_path(text: str, field: str, pointer: str, *, reference: bool = True) -> Path:
    try:
        path: Path | None = Path.compile(text)
    except ValueError:
        path = None
    if path is None or (reference and not path.is_reference):
        kind = "ReferencePath" if reference else "JSONPath"
        raise fail(f"The value for the field '{field}' must be a valid {kind}", pointer)
    return path


ROOT_PATH: Final = Path.compile("$")
"""``$``, compiled once and shared (paths are immutable)."""


def work_fields(fields: Fields, jsonpath: bool) -> dict[str, Any]:
    """The input/output fields of a state that does work (Task, Parallel): the JSONPath ones
    (paths, ``Parameters``, ``ResultSelector``), or JSONata's ``Arguments`` (compiled; JSON
    ``null`` is taken as absent)."""
    if jsonpath:
        return {
            "io": io_paths(fields, result=True),
            "parameters": fields.payload("Parameters"),
            "result_selector": fields.payload("ResultSelector"),
        }
    raw = fields.raw.get("Arguments")
    return {"arguments": None if raw is None else template_value("Arguments", raw)}


def io_paths(fields: Fields, *, result: bool) -> IOPaths:
    """``InputPath``/``OutputPath``/``ResultPath``: absent is ``$``, ``null`` sets the flag."""
    values: dict[str, Any] = {}
    names = ["InputPath", "OutputPath"] + (["ResultPath"] if result else [])
    for name in names:
        key = (
            "input_path"
            if name == "InputPath"
            else ("output_path" if name == "OutputPath" else "result_path")
        )
        if name not in fields.raw:
            values[key] = ROOT_PATH
        elif fields.raw[name] is None:
            values[f"{key}_null"] = True
        else:
            path = fields.path(name, reference=name == "ResultPath")
            if name == "ResultPath" and path is not None and (path.is_context or path.variable):
                # ResultPath writes into the state input; it cannot name $$ or a variable.
                raise fields.invalid_path(name, "ReferencePath")
            values[key] = path
    return IOPaths(**values)
