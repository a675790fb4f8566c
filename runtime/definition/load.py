"""Load a state machine definition: decode, check, normalise defaults, compile, validate.

``load_definition`` is the only way to obtain a :class:`~runtime.definition.model.StateMachine`.
It walks the ASL JSON once, in document order, checking each field as AWS's schema validation
does (``definition.validate`` holds the rule tables), filling ASL defaults and compiling every
path, payload template, intrinsic call and Choice rule exactly once; then it runs the graph
checks. The first problem raises :class:`~runtime.errors.InvalidDefinition` carrying AWS's rule
code and the JSON Pointer of the offending field.

Defaults (ASL): absent ``InputPath``/``OutputPath``/``ResultPath`` mean ``$`` (JSON ``null`` is
kept as ``None`` plus the ``*_null`` flag); a retrier defaults to ``IntervalSeconds`` 1,
``MaxAttempts`` 3, ``BackoffRate`` 2.0; a Map's legacy ``Iterator`` is its ``ItemProcessor`` and
its legacy ``Parameters`` its ``ItemSelector``; ``MaxConcurrency`` defaults to 0 (no limit).
JSONata fields (``Arguments``, ``Output``, ``Assign``, ``Condition``, ``Items``, ``{% %}``
numbers) are stored raw for the JSONata layer.

Nested states (Parallel branches, Map processors) inherit the *machine's* query language, not
their parent state's, as AWS does. This module is pure: no I/O, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, Literal, cast

from runtime.definition import limits, validate
from runtime.definition.model import (
    Catcher,
    Choice,
    Fail,
    IOPaths,
    ItemBatcher,
    Map,
    Parallel,
    Pass,
    QueryLanguage,
    Retrier,
    State,
    StateMachine,
    Succeed,
    Task,
    Wait,
)
from runtime.errors import InvalidDefinition
from runtime.lang.choice import ChoiceRule
from runtime.lang.jsonata import compile_template, is_expression
from runtime.lang.paths import Path
from runtime.lang.payload import Expression, Payload

__all__ = ["load_definition"]

JSON = Any

_SCHEMA: Final = validate.SCHEMA
_QUERY_LANGUAGES: Final = ("JSONPath", "JSONata")
_TOP_LEVEL_FIELDS: Final = frozenset(
    {"Comment", "StartAt", "States", "TimeoutSeconds", "Version", "QueryLanguage"}
)
_BRANCH_FIELDS: Final = frozenset({"Comment", "StartAt", "States"})
_PROCESSOR_FIELDS: Final = _BRANCH_FIELDS | {"ProcessorConfig"}
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
_MAX_TIMEOUT: Final = 99_999_999
_WHAT: Final = "The definition"
_DEPTH: Final = limits.MAX_DEFINITION_DEPTH
_MAX_INTEGER_DIGITS: Final = len(str(limits.MAX_INTEGER))


def load_definition(
    source: str | bytes | Mapping[str, Any], *, machine_type: str = "STANDARD"
) -> StateMachine:
    """Decode, validate and compile an ASL definition.

    Args:
        source: the definition as JSON text (``str``/``bytes``) or an already decoded object.
        machine_type: ``STANDARD`` or ``EXPRESS`` (EXPRESS rejects ``.sync`` and
            ``.waitForTaskToken`` integrations).

    Returns:
        The compiled, immutable state machine.

    Raises:
        InvalidDefinition: the definition is not valid JSON (``INVALID_JSON_DESCRIPTION``) or
            breaks an ASL rule (``SCHEMA_VALIDATION_FAILED``, ``MISSING_TRANSITION_TARGET``,
            ``MISSING_END_STATE``, ``DUPLICATE_STATE_NAME``).
    """
    duplicates = _DuplicateKeys()
    try:
        if isinstance(source, str | bytes):
            limits.check_json_text(
                source, what=_WHAT, max_bytes=limits.MAX_DEFINITION_BYTES, max_depth=_DEPTH
            )
            raw = _decode(source, duplicates)
            limits.check_json(raw, what=_WHAT, max_depth=_DEPTH)
        else:
            raw = source
            limits.check_payload(
                raw, what=_WHAT, max_bytes=limits.MAX_DEFINITION_BYTES, max_depth=_DEPTH
            )
    except limits.JSONLimitError as exc:
        # The limits, checked before any recursive pass (issue 11): at most 1 MiB of text (AWS's
        # hard quota), nested at most MAX_DEFINITION_DEPTH deep, string keys, no lone
        # surrogates, finite numbers; every later pass recurses at most that deep.
        raise InvalidDefinition(_SCHEMA, f"{exc.what} {exc.detail}", exc.pointer) from None
    machine = _Loader(machine_type, duplicates).machine(raw)
    validate.check_graph(machine)
    return machine


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


class _DuplicateKeys:
    """An ``object_pairs_hook`` that builds plain dicts and remembers, by identity, which
    decoded objects repeated a key (AWS reports a repeated state name as DUPLICATE_STATE_NAME;
    Python's parser would silently keep the last one)."""

    def __init__(self) -> None:
        self.seen: dict[int, tuple[dict[str, Any], tuple[str, ...]]] = {}

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs):
            names: set[str] = set()
            repeated = []
            for key, _ in pairs:
                if key in names:
                    repeated.append(key)
                names.add(key)
            # keep the object alive with its entry, so its id() is never reused meanwhile
            self.seen[id(result)] = (result, tuple(repeated))
        return result

    def of(self, value: object) -> tuple[str, ...]:
        entry = self.seen.get(id(value))
        return entry[1] if entry is not None and entry[0] is value else ()


def _decode(source: str | bytes, duplicates: _DuplicateKeys) -> JSON:
    """JSON text -> value; syntax errors worded as AWS's parser (Jackson) words them."""
    text = source.decode("utf-8", errors="replace") if isinstance(source, bytes) else source
    try:
        return json.loads(
            text,
            object_pairs_hook=duplicates,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
        )
    except json.JSONDecodeError as exc:
        raise _json_error(text, exc.pos) from None
    except _NonStandardToken as exc:
        raise _non_standard_token(text, exc.token) from None
    except _IntegerTooLong as exc:
        detail = (
            f"{_WHAT} contains an integer of {exc.digits} digits, larger in magnitude than "
            "the largest finite double (about 1.8e308)"
        )
        raise InvalidDefinition(_SCHEMA, detail, "/") from None


class _IntegerTooLong(ValueError):
    def __init__(self, digits: int) -> None:
        super().__init__(digits)
        self.digits = digits


def _parse_int(text: str) -> int:
    """An integer literal, refused before conversion when it has more digits than any integer
    within :data:`~runtime.definition.limits.MAX_INTEGER` (converting a long decimal text is
    quadratic, and Python refuses more than 4,300 digits with a bare ``ValueError``)."""
    digits = len(text) - text.startswith("-")
    if digits > _MAX_INTEGER_DIGITS:
        raise _IntegerTooLong(digits)
    return int(text)


class _NonStandardToken(ValueError):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def _reject_constant(token: str) -> Any:
    """``NaN``/``Infinity`` are accepted by Python's parser, not by JSON (nor by AWS)."""
    raise _NonStandardToken(token)


def _non_standard_token(text: str, token: str) -> InvalidDefinition:
    start = text.find(token)
    error = _json_error(text, start)
    detail = (
        f"Non-standard token '{token}': enable `JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS` to allow"
    )
    return InvalidDefinition(error.code, detail, error.pointer)


def _json_error(text: str, pos: int) -> InvalidDefinition:
    """``INVALID_JSON_DESCRIPTION`` with Jackson's message and ``[Source: ...]`` location."""
    shown = text if len(text) <= 500 else f'{text[:500]}"[truncated {len(text) - 500} chars]'
    if pos >= len(text.rstrip()) or not text.strip():
        detail = "No content to map due to end-of-input"
        end = len(text)
    elif text[pos].isalpha():
        stop = pos
        while stop < len(text) and (text[stop].isalnum() or text[stop] in "_-."):
            stop += 1
        detail = (
            f"Unrecognized token '{text[pos:stop]}': was expecting (JSON String, Number, "
            "Array, Object or token 'null', 'true' or 'false')"
        )
        end = stop
    else:
        char = text[pos]
        detail = f"Unexpected character ('{char}' (code {ord(char)}))"
        end = pos + 1
    line = text.count("\n", 0, end) + 1
    column = end - (text.rfind("\n", 0, end) + 1) + 1
    location = f'[Source: (String)"{shown}"; line: {line}, column: {column}]'
    return InvalidDefinition("INVALID_JSON_DESCRIPTION", detail, location)


# ---------------------------------------------------------------------------------------------
# Typed field access
# ---------------------------------------------------------------------------------------------


def _fail(detail: str, pointer: str) -> InvalidDefinition:
    return InvalidDefinition(_SCHEMA, detail, pointer or "/")


def _is_expr(value: JSON) -> bool:
    """A JSONata ``{% ... %}`` string (exactly: AWS treats ``" {% x %} "`` as a constant)."""
    return is_expression(value)


def _is_int(value: JSON) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


class _Fields:
    """Typed, pointer-aware reads of one JSON object's fields."""

    __slots__ = ("pointer", "raw")

    def __init__(self, raw: Mapping[str, JSON], pointer: str) -> None:
        self.raw = raw
        self.pointer = pointer

    def at(self, field: str) -> str:
        return f"{self.pointer}/{validate.escape_pointer(field)}"

    def wrong_type(self, field: str, kind: str) -> InvalidDefinition:
        article = "an" if kind[0] in "AEIOU" else "a"
        return _fail(f"The value for the field '{field}' must be {article} {kind}", self.pointer)

    def require(self, *fields: str) -> None:
        for field in fields:
            if field not in self.raw:
                raise _fail(f"The field '{field}' is required but was missing", self.pointer)

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
            raise _fail(
                f"The value for the field '{field}' must be greater than or equal to {minimum}",
                self.pointer,
            )
        if maximum is not None and number > maximum:
            raise _fail(
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
            raise _fail(f"The value for the field '{field}' must be {bounds}", self.pointer)
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
            raise _fail(f"The field '{field}' must have at least 1 item", self.pointer)
        return value

    def path(self, field: str, *, reference: bool = True) -> Path | None:
        """A path field (``InputPath``, ``ItemsPath``, ``SecondsPath``, ...); ``None`` if absent.

        Every path field but ``InputPath``/``OutputPath`` must be a Reference Path.
        """
        text = self.string(field)
        if text is None:
            return None
        return _compile_path(text, field, self.pointer, reference=reference)

    def invalid_path(self, field: str, kind: str) -> InvalidDefinition:
        return _fail(f"The value for the field '{field}' must be a valid {kind}", self.pointer)

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
            raise _fail(
                f"The fields '{present[0]}' and '{present[1]}' are mutually exclusive",
                self.pointer,
            )


def _compile_path(text: str, field: str, pointer: str, *, reference: bool = True) -> Path:
    try:
        path: Path | None = Path.compile(text)
    except ValueError:
        path = None
    if path is None or (reference and not path.is_reference):
        kind = "ReferencePath" if reference else "JSONPath"
        raise _fail(f"The value for the field '{field}' must be a valid {kind}", pointer)
    return path


_ROOT_PATH: Final = Path.compile("$")
"""``$``, compiled once and shared (paths are immutable)."""


def _work_fields(fields: _Fields, jsonpath: bool) -> dict[str, Any]:
    """The input/output fields of a state that does work (Task, Parallel): the JSONPath ones
    (paths, ``Parameters``, ``ResultSelector``), or JSONata's raw ``Arguments``."""
    if jsonpath:
        return {
            "io": _io_paths(fields, result=True),
            "parameters": fields.payload("Parameters"),
            "result_selector": fields.payload("ResultSelector"),
        }
    return {"arguments": fields.raw.get("Arguments")}


def _io_paths(fields: _Fields, *, result: bool) -> IOPaths:
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
            values[key] = _ROOT_PATH
        elif fields.raw[name] is None:
            values[f"{key}_null"] = True
        else:
            path = fields.path(name, reference=name == "ResultPath")
            if name == "ResultPath" and path is not None and (path.is_context or path.variable):
                # ResultPath writes into the state input; it cannot name $$ or a variable.
                raise fields.invalid_path(name, "ReferencePath")
            values[key] = path
    return IOPaths(**values)


# ---------------------------------------------------------------------------------------------
# The loader
# ---------------------------------------------------------------------------------------------


class _Loader:
    """One load: the machine type, the top-level query language, the state names seen."""

    def __init__(self, machine_type: str, duplicates: _DuplicateKeys) -> None:
        self.machine_type = machine_type
        self.duplicates = duplicates
        self.language: QueryLanguage = "JSONPath"
        self.names: set[str] = set()

    # -- levels ---------------------------------------------------------------------------

    def machine(self, raw: JSON) -> StateMachine:
        """The top-level definition (ASL "Top-level fields")."""
        if not isinstance(raw, Mapping):
            raise _fail("The state machine definition must be a JSON object", "/")
        fields = _Fields(raw, "")
        missing = [name for name in ("StartAt", "States") if name not in raw]
        if missing:
            raise _fail(f"These fields are required: [{', '.join(missing)}]", "/")
        for name in raw:
            if name not in _TOP_LEVEL_FIELDS:
                raise _fail(f"Field '{name}' is not supported", "/")
        language = fields.string("QueryLanguage")
        if language is not None:
            if language not in _QUERY_LANGUAGES:
                raise _fail(
                    "The value for the field 'QueryLanguage' must be one of [JSONPath, JSONata]",
                    "/QueryLanguage",
                )
            self.language = cast("QueryLanguage", language)
        version = fields.string("Version")
        timeout = fields.integer("TimeoutSeconds", minimum=0, maximum=_MAX_TIMEOUT)
        start_at, states = self.level(fields)
        return StateMachine(
            start_at=start_at,
            states=states,
            comment=fields.string("Comment"),
            timeout_seconds=timeout,
            query_language=self.language,
            version=version,
            source=raw,
            pointer="",
        )

    def nested(self, raw: JSON, pointer: str, allowed: frozenset[str]) -> StateMachine:
        """A Parallel branch or a Map processor."""
        if not isinstance(raw, Mapping):
            raise _fail("The value must be an OBJECT", pointer)
        fields = _Fields(raw, pointer)
        missing = [name for name in ("StartAt", "States") if name not in raw]
        if missing:
            raise _fail(f"These fields are required: [{', '.join(missing)}]", pointer)
        for name in raw:
            if name not in allowed:
                raise _fail(f"Field '{name}' is not supported", pointer)
        start_at, states = self.level(fields)
        return StateMachine(
            start_at=start_at,
            states=states,
            comment=fields.string("Comment"),
            query_language=self.language,
            source=raw,
            pointer=pointer,
        )

    def level(self, fields: _Fields) -> tuple[str, dict[str, State]]:
        start_at = fields.string("StartAt")
        assert start_at is not None  # required above
        raw_states = fields.mapping("States")
        assert raw_states is not None
        states_pointer = fields.at("States")
        states: dict[str, State] = {}
        duplicates = self.duplicates.of(raw_states)
        if duplicates:
            name = duplicates[0]
            raise InvalidDefinition(
                "DUPLICATE_STATE_NAME",
                f"Duplicate State name: {name}",
                f"{states_pointer}/{validate.escape_pointer(name)}",
            )
        for name, raw_state in raw_states.items():
            pointer = f"{states_pointer}/{validate.escape_pointer(name)}"
            if name in self.names:
                raise InvalidDefinition(
                    "DUPLICATE_STATE_NAME", f"Duplicate State name: {name}", pointer
                )
            self.names.add(name)
            states[name] = self.state(name, raw_state, pointer)
        return start_at, states

    # -- states -----------------------------------------------------------------------------

    def state(self, name: str, raw: JSON, pointer: str) -> State:
        """One state: common fields, then its type's own (ASL "Common State Fields")."""
        if not isinstance(raw, Mapping):
            raise _fail("The value must be an OBJECT", pointer)
        fields = _Fields(raw, pointer)
        fields.require("Type")
        kind = fields.string("Type")
        if kind not in validate.STATE_TYPES:
            raise _fail(
                "The value for the field 'Type' must be one of "
                f"[{', '.join(validate.STATE_TYPES)}]",
                pointer,
            )
        language = self.state_language(fields)
        validate.check_state_fields(raw, kind, language, pointer)
        if language == "JSONata":
            self.compile_jsonata(raw, pointer)
        assign, assign_payload = self.assign(fields, language)
        common: dict[str, Any] = {
            "name": name,
            "comment": fields.string("Comment"),
            "query_language": language,
            "pointer": pointer,
            "assign": assign,
            "assign_payload": assign_payload,
            "output": raw.get("Output"),
            "has_output": "Output" in raw,
        }
        if kind not in ("Choice", "Succeed", "Fail"):
            common.update(self.transition(fields))
        jsonpath = language == "JSONPath"
        match kind:
            case "Pass":
                return self.pass_state(fields, common, jsonpath)
            case "Task":
                return self.task(fields, common, jsonpath)
            case "Choice":
                return self.choice(fields, common, language)
            case "Wait":
                return self.wait(fields, common, jsonpath)
            case "Succeed":
                io = _io_paths(fields, result=False) if jsonpath else IOPaths()
                return Succeed(io=io, **common)
            case "Fail":
                return self.fail_state(fields, common, jsonpath)
            case "Parallel":
                return self.parallel(fields, common, jsonpath)
            case _:
                return self.map_state(fields, common, jsonpath)

    def state_language(self, fields: _Fields) -> QueryLanguage:
        """A state's ``QueryLanguage``: its own, else the machine's; never JSONPath under a
        JSONata machine."""
        language = fields.string("QueryLanguage")
        if language is None:
            return self.language
        if language not in _QUERY_LANGUAGES:
            raise _fail(
                "The value for the field 'QueryLanguage' must be one of [JSONPath, JSONata]",
                fields.at("QueryLanguage"),
            )
        if language == "JSONPath" and self.language == "JSONata":
            raise _fail(
                "'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' for whole state machine",
                fields.pointer,
            )
        return cast("QueryLanguage", language)

    @staticmethod
    def compile_jsonata(raw: Mapping[str, JSON], pointer: str) -> None:
        """Compile every ``{% %}`` expression of a JSONata state once, at load time (nested
        machines are compiled with their own states)."""
        for field, value in raw.items():
            if field in ("Branches", "ItemProcessor", "Iterator"):
                continue
            try:
                compile_template(value)
            except ValueError as exc:
                raise _fail(str(exc), f"{pointer}/{validate.escape_pointer(field)}") from None

    @staticmethod
    def assign(fields: _Fields, language: str) -> tuple[JSON, Payload | None]:
        """``Assign`` (workflow variables): the raw object, and in JSONPath its compiled payload
        template (its ``.$`` values must be valid paths or intrinsic calls); ``(None, None)``
        when absent. JSONata's raw template is compiled by :meth:`compile_jsonata`."""
        if "Assign" not in fields.raw:
            return None, None
        value = fields.raw["Assign"]
        if not isinstance(value, Mapping):
            raise fields.wrong_type("Assign", "OBJECT")
        if language == "JSONPath":
            return value, Payload.compile(value, fields.at("Assign"))
        return value, None

    @staticmethod
    def transition(fields: _Fields) -> dict[str, Any]:
        """``Next`` xor ``End: true`` (ASL "Transitions")."""
        next_state = fields.string("Next")
        end = fields.boolean("End")
        if next_state is not None and end:
            raise _fail("The fields 'Next' and 'End' are mutually exclusive", fields.pointer)
        if next_state is None and not end:
            raise _fail("This state must have either a 'Next' or an 'End' field", fields.pointer)
        return {"next": next_state, "end": bool(end)}

    def pass_state(self, fields: _Fields, common: dict[str, Any], jsonpath: bool) -> Pass:
        plain = common["assign"] is None and not common["has_output"]
        if not jsonpath:
            return Pass(is_plain=plain, **common)
        io = _io_paths(fields, result=True)
        parameters = fields.payload("Parameters")
        plain = (
            plain
            and parameters is None
            and "Result" not in fields.raw
            and all(
                path is not None and path.text == "$"
                for path in (io.input_path, io.result_path, io.output_path)
            )
        )
        return Pass(
            io=io,
            parameters=parameters,
            result=fields.raw.get("Result"),
            has_result="Result" in fields.raw,
            is_plain=plain,
            **common,
        )

    def task(self, fields: _Fields, common: dict[str, Any], jsonpath: bool) -> Task:
        """A Task state (ASL "Task State")."""
        fields.require("Resource")
        resource = fields.string("Resource")
        assert resource is not None
        validate.check_resource(resource, self.machine_type, fields.at("Resource"))
        fields.exclusive("TimeoutSeconds", "TimeoutSecondsPath")
        fields.exclusive("HeartbeatSeconds", "HeartbeatSecondsPath")
        values: dict[str, Any] = {}
        for field, key in (("TimeoutSeconds", "timeout"), ("HeartbeatSeconds", "heartbeat")):
            if not jsonpath and _is_expr(fields.raw.get(field)):
                values[f"{key}_expr"] = fields.raw[field]
            else:
                values[f"{key}_seconds"] = fields.integer(field, minimum=1, maximum=_MAX_TIMEOUT)
            if jsonpath:
                values[f"{key}_seconds_path"] = fields.path(f"{field}Path")
        timeout, heartbeat = values.get("timeout_seconds"), values.get("heartbeat_seconds")
        if timeout is not None and heartbeat is not None and heartbeat >= timeout:
            raise _fail(
                "The value for the field 'HeartbeatSeconds' must be smaller than the value for "
                "the field 'TimeoutSeconds'",
                fields.pointer,
            )
        credentials = self.credentials(fields, jsonpath)
        values.update(_work_fields(fields, jsonpath))
        return Task(
            resource=resource,
            resolved_resource=validate.resolve_resource(resource),
            credentials=credentials,
            retry=self.retry(fields),
            catch=self.catch(fields, jsonpath),
            **values,
            **common,
        )

    @staticmethod
    def credentials(fields: _Fields, jsonpath: bool) -> JSON:
        """``Credentials``: an object with ``RoleArn`` (``RoleArn.$`` in JSONPath)."""
        value = fields.mapping("Credentials")
        if value is None:
            return None
        inner = _Fields(value, fields.at("Credentials"))
        allowed = {"RoleArn", "RoleArn.$"} if jsonpath else {"RoleArn"}
        for name in value:
            if name not in allowed:
                raise _fail(f"Field '{name}' is not supported", inner.pointer)
        if "RoleArn" not in value and "RoleArn.$" not in value:
            raise _fail("The field 'RoleArn' is required but was missing", inner.pointer)
        if "RoleArn.$" in value:
            role_path = inner.string("RoleArn.$")
            assert role_path is not None
            _compile_path(role_path, "RoleArn.$", inner.pointer)
        else:
            inner.string("RoleArn")
        return value

    def choice(self, fields: _Fields, common: dict[str, Any], language: QueryLanguage) -> Choice:
        """A Choice state (ASL "Choice State"); ``Choices`` is a non-empty array of rules."""
        fields.require("Choices")
        rules = fields.array("Choices", non_empty=True)
        assert rules is not None
        base = fields.at("Choices")
        rule_payloads: list[Payload | None] = []
        for index, rule in enumerate(rules):
            payload = None
            if isinstance(rule, Mapping) and "Assign" in rule:
                _, payload = self.assign(_Fields(rule, f"{base}[{index}]"), language)
            rule_payloads.append(payload)
        compiled = tuple(
            ChoiceRule.compile(rule, f"{base}[{index}]", top_level=True, query_language=language)
            for index, rule in enumerate(rules)
        )
        io = _io_paths(fields, result=False) if language == "JSONPath" else IOPaths()
        return Choice(
            choices=compiled,
            default=fields.string("Default"),
            choice_assign_payloads=tuple(rule_payloads),
            io=io,
            **common,
        )

    def wait(self, fields: _Fields, common: dict[str, Any], jsonpath: bool) -> Wait:
        """A Wait state: exactly one of ``Seconds``, ``Timestamp``, ``SecondsPath``,
        ``TimestampPath`` (ASL "Wait State")."""
        present = [
            name
            for name in ("Seconds", "Timestamp", "SecondsPath", "TimestampPath")
            if name in fields.raw
        ]
        if len(present) != 1:
            raise _fail(
                "A Wait state must have exactly one of the fields "
                "'Seconds', 'Timestamp', 'SecondsPath' or 'TimestampPath'",
                fields.pointer,
            )
        values: dict[str, Any] = {}
        seconds, timestamp = fields.raw.get("Seconds"), fields.raw.get("Timestamp")
        if "Seconds" in fields.raw:
            if not jsonpath and _is_expr(seconds):
                values["seconds_expr"] = seconds
            else:
                values["seconds"] = fields.integer("Seconds", minimum=0, maximum=_MAX_TIMEOUT)
        if "Timestamp" in fields.raw:
            if not jsonpath and _is_expr(timestamp):
                values["timestamp_expr"] = timestamp
            else:
                values["timestamp"] = validate.check_timestamp(timestamp, fields.at("Timestamp"))
        if jsonpath:
            values.update(
                io=_io_paths(fields, result=False),
                seconds_path=fields.path("SecondsPath"),
                timestamp_path=fields.path("TimestampPath"),
            )
        return Wait(**values, **common)

    def fail_state(self, fields: _Fields, common: dict[str, Any], jsonpath: bool) -> Fail:
        """A Fail state: ``Error``/``Cause`` or, in JSONPath, ``ErrorPath``/``CausePath``."""
        fields.exclusive("Error", "ErrorPath")
        fields.exclusive("Cause", "CausePath")
        values: dict[str, Any] = {}
        for field, key in (("Error", "error"), ("Cause", "cause")):
            value = fields.raw.get(field)
            if not jsonpath and _is_expr(value):
                values[f"{key}_expr"] = value
            else:
                values[key] = fields.string(field)
            if jsonpath:
                text = fields.string(f"{field}Path")
                if text is not None:
                    values[f"{key}_path"] = Expression.compile(text, f"{field}Path", fields.pointer)
        return Fail(**values, **common)

    def parallel(self, fields: _Fields, common: dict[str, Any], jsonpath: bool) -> Parallel:
        """A Parallel state (ASL "Parallel State"); ``Branches`` is a non-empty array."""
        fields.require("Branches")
        raw_branches = fields.array("Branches", non_empty=True)
        assert raw_branches is not None
        base = fields.at("Branches")
        branches = tuple(
            self.nested(branch, f"{base}[{index}]", _BRANCH_FIELDS)
            for index, branch in enumerate(raw_branches)
        )
        values = _work_fields(fields, jsonpath)
        return Parallel(
            branches=branches,
            retry=self.retry(fields),
            catch=self.catch(fields, jsonpath),
            **values,
            **common,
        )

    def map_state(self, fields: _Fields, common: dict[str, Any], jsonpath: bool) -> Map:
        """A Map state, inline or distributed (ASL "Map State")."""
        raw = fields.raw
        if "ItemProcessor" in raw and "Iterator" in raw:
            fields.exclusive("ItemProcessor", "Iterator")
        processor_field = "Iterator" if "Iterator" in raw else "ItemProcessor"
        fields.require(processor_field)
        fields.exclusive("ItemSelector", "Parameters")
        processor_raw = fields.mapping(processor_field)
        assert processor_raw is not None
        processor_pointer = fields.at(processor_field)
        mode, execution_type = self.processor_config(processor_raw, processor_pointer)
        # A Distributed Map's child workflows run as the ExecutionType says: EXPRESS children
        # are Express workflows, so the EXPRESS rules (no .sync, no .waitForTaskToken, no
        # activities) hold inside the processor of any machine (issue 15).
        outer_type = self.machine_type
        if mode == "DISTRIBUTED" and execution_type == "EXPRESS":
            self.machine_type = "EXPRESS"
        try:
            processor = self.nested(processor_raw, processor_pointer, _PROCESSOR_FIELDS)
        finally:
            self.machine_type = outer_type
        values: dict[str, Any] = {"mode": mode, "execution_type": execution_type}
        fields.exclusive("MaxConcurrency", "MaxConcurrencyPath")
        fields.exclusive("ToleratedFailureCount", "ToleratedFailureCountPath")
        fields.exclusive("ToleratedFailurePercentage", "ToleratedFailurePercentagePath")
        numbers = (
            ("MaxConcurrency", "max_concurrency", False),
            ("ToleratedFailureCount", "tolerated_failure_count", False),
            ("ToleratedFailurePercentage", "tolerated_failure_percentage", True),
        )
        for field, key, percentage in numbers:
            value = raw.get(field)
            if not jsonpath and _is_expr(value):
                values[f"{key}_expr"] = value
            elif percentage:
                values[key] = fields.number(field, 0, 100)
            elif field in raw:
                values[key] = fields.integer(field, minimum=0)
            if jsonpath:
                values[f"{key}_path"] = fields.path(f"{field}Path")
        if "Label" in raw:
            values["label"] = validate.check_label(raw["Label"], fields.at("Label"))
        if jsonpath:
            selector = "ItemSelector" if "ItemSelector" in raw else "Parameters"
            values.update(
                io=_io_paths(fields, result=True),
                items_path=fields.path("ItemsPath") if "ItemsPath" in raw else _ROOT_PATH,
                item_selector=fields.payload(selector),
                result_selector=fields.payload("ResultSelector"),
                item_batcher=self.item_batcher(fields),
            )
        else:
            values.update(
                items_expr=raw.get("Items"),
                item_selector_expr=raw.get("ItemSelector"),
                item_batcher_expr=fields.mapping("ItemBatcher"),
            )
        return Map(
            processor=processor,
            item_reader=fields.mapping("ItemReader"),
            result_writer=fields.mapping("ResultWriter"),
            retry=self.retry(fields),
            catch=self.catch(fields, jsonpath),
            **values,
            **common,
        )

    @staticmethod
    def processor_config(
        raw: Mapping[str, JSON], pointer: str
    ) -> tuple[Literal["INLINE", "DISTRIBUTED"], Literal["STANDARD", "EXPRESS"]]:
        """``ProcessorConfig``: ``Mode`` INLINE (default) or DISTRIBUTED, ``ExecutionType``."""
        fields = _Fields(raw, pointer)
        config = fields.mapping("ProcessorConfig")
        if config is None:
            return "INLINE", "STANDARD"
        inner = _Fields(config, fields.at("ProcessorConfig"))
        for name in config:
            if name not in ("Mode", "ExecutionType"):
                raise _fail(f"Field '{name}' is not supported", inner.pointer)
        mode = inner.string("Mode") or "INLINE"
        if mode not in ("INLINE", "DISTRIBUTED"):
            raise _fail(
                "The value for the field 'Mode' must be one of [INLINE, DISTRIBUTED]",
                inner.pointer,
            )
        execution_type = inner.string("ExecutionType") or "STANDARD"
        if execution_type not in ("STANDARD", "EXPRESS"):
            raise _fail(
                "The value for the field 'ExecutionType' must be one of [STANDARD, EXPRESS]",
                inner.pointer,
            )
        return (
            cast("Literal['INLINE', 'DISTRIBUTED']", mode),
            cast("Literal['STANDARD', 'EXPRESS']", execution_type),
        )

    @staticmethod
    def item_batcher(fields: _Fields) -> ItemBatcher | None:
        raw = fields.mapping("ItemBatcher")
        if raw is None:
            return None
        inner = _Fields(raw, fields.at("ItemBatcher"))
        allowed = {
            "MaxItemsPerBatch",
            "MaxItemsPerBatchPath",
            "MaxInputBytesPerBatch",
            "MaxInputBytesPerBatchPath",
            "BatchInput",
        }
        for name in raw:
            if name not in allowed:
                raise _fail(f"Field '{name}' is not supported", inner.pointer)
        return ItemBatcher(
            max_items_per_batch=inner.integer("MaxItemsPerBatch", minimum=0),
            max_items_per_batch_path=inner.path("MaxItemsPerBatchPath"),
            max_input_bytes_per_batch=inner.integer("MaxInputBytesPerBatch", minimum=0),
            max_input_bytes_per_batch_path=inner.path("MaxInputBytesPerBatchPath"),
            batch_input=inner.payload("BatchInput"),
        )

    # -- error handling -------------------------------------------------------------------

    @staticmethod
    def error_equals(fields: _Fields) -> tuple[str, ...]:
        fields.require("ErrorEquals")
        names = fields.array("ErrorEquals", non_empty=True)
        assert names is not None
        for name in names:
            if not isinstance(name, str):
                raise fields.wrong_type("ErrorEquals", "ARRAY of STRING")
        return tuple(names)

    def retry(self, fields: _Fields) -> tuple[Retrier, ...]:
        """``Retry`` (ASL "Retrying after error"), with the spec's defaults."""
        raw = fields.array("Retry")
        if raw is None:
            return ()
        retriers = []
        for index, item in enumerate(raw):
            pointer = f"{fields.at('Retry')}[{index}]"
            if not isinstance(item, Mapping):
                raise _fail("The value must be an OBJECT", pointer)
            inner = _Fields(item, pointer)
            for name in item:
                if name not in _RETRIER_FIELDS:
                    raise _fail(f"Field '{name}' is not supported", pointer)
            error_equals = self.error_equals(inner)
            validate.check_states_all(error_equals, index == len(raw) - 1, "Retry", pointer)
            interval = inner.integer("IntervalSeconds", minimum=1, maximum=_MAX_TIMEOUT)
            attempts = inner.integer("MaxAttempts", minimum=0, maximum=_MAX_TIMEOUT)
            backoff = inner.number("BackoffRate", 1.0)
            max_delay = inner.integer("MaxDelaySeconds", minimum=1, maximum=_MAX_TIMEOUT)
            jitter = inner.string("JitterStrategy")
            if jitter is not None and jitter not in ("FULL", "NONE"):
                raise _fail(
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

    def catch(self, fields: _Fields, jsonpath: bool) -> tuple[Catcher, ...]:
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
                raise _fail("The value must be an OBJECT", pointer)
            inner = _Fields(item, pointer)
            for name in item:
                if name not in _CATCHER_FIELDS:
                    raise _fail(f"Field '{name}' is not supported", pointer)
                if name == foreign:
                    raise _fail(validate.language_mismatch(name, language), pointer)
            error_equals = self.error_equals(inner)
            validate.check_states_all(error_equals, index == len(raw) - 1, "Catch", pointer)
            inner.require("Next")
            next_state = inner.string("Next")
            assert next_state is not None
            result_path: Path | None = _ROOT_PATH
            if "ResultPath" in item:
                result_path = None if item["ResultPath"] is None else inner.path("ResultPath")
                if result_path is not None and (result_path.is_context or result_path.variable):
                    raise inner.invalid_path("ResultPath", "ReferencePath")
            assign, assign_payload = self.assign(inner, language)
            catchers.append(
                Catcher(
                    error_equals=error_equals,
                    next=next_state,
                    result_path=result_path,
                    result_path_set="ResultPath" in item,
                    assign=assign,
                    assign_payload=assign_payload,
                    output=item.get("Output"),
                    has_output="Output" in item,
                )
            )
        return tuple(catchers)
