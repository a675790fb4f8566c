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
A field that takes a value (a Wait's ``Seconds``/``Timestamp``, a Task's ``TimeoutSeconds``/
``HeartbeatSeconds``, a Fail's ``Error``/``Cause``, a Map's ``Items``, ``ItemSelector``,
``MaxConcurrency``, tolerance and ``ItemBatcher`` fields) compiles, with its ``...Path`` form,
into one :class:`~runtime.definition.values.Value` whatever the query language, as does every
``Assign`` (a state's, a Choice rule's, a Catcher's), JSONata ``Output`` and a Task's and a
Parallel's JSONata ``Arguments``.

Nested states (Parallel branches, Map processors) inherit the *machine's* query language, not
their parent state's, as AWS does.

The parts: :mod:`runtime.definition.decode` turns JSON text into a value with Jackson's
messages; :mod:`runtime.definition.fields` reads typed fields and the field groups states share;
:mod:`runtime.definition.recovery` compiles ``Retry`` and ``Catch``; this module walks the
levels (machine, branches, processors) and each state type's own fields. This module is pure
(no I/O, no clock); it imports only the standard library, ``runtime.errors``,
``runtime.definition`` and ``runtime.lang``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, cast

from runtime.definition import limits, validate
from runtime.definition.decode import WHAT, DuplicateKeys, decode
from runtime.definition.fields import (
    MAX_TIMEOUT,
    ROOT_PATH,
    Fields,
    compile_path,
    fail,
    io_paths,
    is_expr,
    payload_value,
    template_value,
    work_fields,
)
from runtime.definition.model import (
    Choice,
    Fail,
    IOPaths,
    ItemBatcher,
    Map,
    Parallel,
    Pass,
    QueryLanguage,
    State,
    StateMachine,
    Succeed,
    Task,
    Wait,
)
from runtime.definition.recovery import load_catch, load_retry
from runtime.definition.values import (
    Constant,
    EmptyObject,
    Expression,
    Reference,
    ReferenceOrCall,
    StateInput,
    Value,
)
from runtime.errors import InvalidDefinition
from runtime.lang import jsonata
from runtime.lang.choice import ChoiceRule
from runtime.lang.jsonata import compile_template
from runtime.lang.payload import Expression as PathExpression

__all__ = ["load_definition"]

JSON = Any

_SCHEMA: Final = validate.SCHEMA
_QUERY_LANGUAGES: Final = ("JSONPath", "JSONata")
_TOP_LEVEL_FIELDS: Final = frozenset(
    {"Comment", "StartAt", "States", "TimeoutSeconds", "Version", "QueryLanguage"}
)
_BRANCH_FIELDS: Final = frozenset({"Comment", "StartAt", "States"})
#: The fields every level needs, in the order AWS names them when they are missing
#: ("These fields are required: [States, StartAt]").
_REQUIRED_LEVEL_FIELDS: Final = ("States", "StartAt")
_PROCESSOR_FIELDS: Final = _BRANCH_FIELDS | {"ProcessorConfig"}
_DEPTH: Final = limits.MAX_DEFINITION_DEPTH


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
    duplicates = DuplicateKeys()
    try:
        if isinstance(source, str | bytes):
            limits.check_json_text(
                source, what=WHAT, max_bytes=limits.MAX_DEFINITION_BYTES, max_depth=_DEPTH
            )
            raw = decode(source, duplicates)
            limits.check_json(raw, what=WHAT, max_depth=_DEPTH)
        else:
            raw = source
            limits.check_payload(
                raw, what=WHAT, max_bytes=limits.MAX_DEFINITION_BYTES, max_depth=_DEPTH
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
# The loader
# ---------------------------------------------------------------------------------------------


class _Loader:
    """One load: the machine type, the top-level query language, the state names seen."""

    def __init__(self, machine_type: str, duplicates: DuplicateKeys) -> None:
        self.machine_type = machine_type
        self.duplicates = duplicates
        self.language: QueryLanguage = "JSONPath"
        self.names: set[str] = set()

    # -- levels ---------------------------------------------------------------------------

    def machine(self, raw: JSON) -> StateMachine:
        """The top-level definition (ASL "Top-level fields")."""
        if not isinstance(raw, Mapping):
            raise fail("The state machine definition must be a JSON object", "/")
        fields = Fields(raw, "")
        missing = [name for name in _REQUIRED_LEVEL_FIELDS if name not in raw]
        if missing:
            raise fail(f"These fields are required: [{', '.join(missing)}]", "/")
        for name in raw:
            if name not in _TOP_LEVEL_FIELDS:
                raise fail(f"Field '{name}' is not supported", "/")
        language = fields.string("QueryLanguage")
        if language is not None:
            if language not in _QUERY_LANGUAGES:
                raise fail(
                    "The value for the field 'QueryLanguage' must be one of [JSONPath, JSONata]",
                    "/QueryLanguage",
                )
            self.language = cast("QueryLanguage", language)
        version = fields.string("Version")
        timeout = fields.integer("TimeoutSeconds", minimum=0, maximum=MAX_TIMEOUT)
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
            raise fail("The value must be an OBJECT", pointer)
        fields = Fields(raw, pointer)
        missing = [name for name in _REQUIRED_LEVEL_FIELDS if name not in raw]
        if missing:
            raise fail(f"These fields are required: [{', '.join(missing)}]", pointer)
        for name in raw:
            if name not in allowed:
                raise fail(f"Field '{name}' is not supported", pointer)
        start_at, states = self.level(fields)
        return StateMachine(
            start_at=start_at,
            states=states,
            comment=fields.string("Comment"),
            query_language=self.language,
            source=raw,
            pointer=pointer,
        )

    def level(self, fields: Fields) -> tuple[str, dict[str, State]]:
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
            raise fail("The value must be an OBJECT", pointer)
        fields = Fields(raw, pointer)
        fields.require("Type")
        kind = fields.string("Type")
        if kind not in validate.STATE_TYPES:
            raise fail(
                "The value for the field 'Type' must be one of "
                f"[{', '.join(validate.STATE_TYPES)}]",
                pointer,
            )
        language = self.state_language(fields)
        validate.check_state_fields(raw, kind, language, pointer)
        if language == "JSONata":
            self.compile_jsonata(raw, pointer)
        jsonpath = language == "JSONPath"
        common: dict[str, Any] = {
            "name": name,
            "comment": fields.string("Comment"),
            "query_language": language,
            "pointer": pointer,
            "assign_value": fields.assign(language),
            "output_value": fields.output(language),
        }
        if kind not in ("Choice", "Succeed", "Fail"):
            common.update(fields.transition())
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
                io = io_paths(fields, result=False) if jsonpath else IOPaths()
                return Succeed(io=io, **common)
            case "Fail":
                return self.fail_state(fields, common, jsonpath)
            case "Parallel":
                return self.parallel(fields, common, jsonpath)
            case _:
                return self.map_state(fields, common, jsonpath)

    def state_language(self, fields: Fields) -> QueryLanguage:
        """A state's ``QueryLanguage``: its own, else the machine's; never JSONPath under a
        JSONata machine."""
        language = fields.string("QueryLanguage")
        if language is None:
            return self.language
        if language not in _QUERY_LANGUAGES:
            raise fail(
                "The value for the field 'QueryLanguage' must be one of [JSONPath, JSONata]",
                fields.at("QueryLanguage"),
            )
        if language == "JSONPath" and self.language == "JSONata":
            raise fail(
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
                raise fail(str(exc), f"{pointer}/{validate.escape_pointer(field)}") from None

    def pass_state(self, fields: Fields, common: dict[str, Any], jsonpath: bool) -> Pass:
        plain = common["assign_value"] is None and common["output_value"] is None
        if not jsonpath:
            return Pass(is_plain=plain, **common)
        io = io_paths(fields, result=True)
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

    def task(self, fields: Fields, common: dict[str, Any], jsonpath: bool) -> Task:
        """A Task state (ASL "Task State")."""
        fields.require("Resource")
        resource = fields.string("Resource")
        assert resource is not None
        validate.check_resource(resource, self.machine_type, fields.at("Resource"))
        fields.exclusive("TimeoutSeconds", "TimeoutSecondsPath")
        fields.exclusive("HeartbeatSeconds", "HeartbeatSecondsPath")
        timeout = value_field(
            fields,
            "TimeoutSeconds",
            jsonpath,
            lambda: fields.integer("TimeoutSeconds", minimum=1, maximum=MAX_TIMEOUT),
        )
        heartbeat = value_field(
            fields,
            "HeartbeatSeconds",
            jsonpath,
            lambda: fields.integer("HeartbeatSeconds", minimum=1, maximum=MAX_TIMEOUT),
        )
        values: dict[str, Any] = {"timeout_seconds": timeout, "heartbeat_seconds": heartbeat}
        # Checked at load time when both are constants; a path or an expression is checked
        # only against the fields' bounds, when the Task is scheduled.
        if (
            isinstance(timeout, Constant)
            and isinstance(heartbeat, Constant)
            and heartbeat.value >= timeout.value
        ):
            raise fail(
                "The value for the field 'HeartbeatSeconds' must be smaller than the value for "
                "the field 'TimeoutSeconds'",
                fields.pointer,
            )
        credentials = self.credentials(fields, jsonpath)
        values.update(work_fields(fields, jsonpath))
        return Task(
            resource=resource,
            resolved_resource=validate.resolve_resource(resource),
            credentials=credentials,
            retry=load_retry(fields),
            catch=load_catch(fields, jsonpath),
            **values,
            **common,
        )

    @staticmethod
    def credentials(fields: Fields, jsonpath: bool) -> JSON:
        """``Credentials``: an object with ``RoleArn`` (``RoleArn.$`` in JSONPath)."""
        value = fields.mapping("Credentials")
        if value is None:
            return None
        inner = Fields(value, fields.at("Credentials"))
        allowed = {"RoleArn", "RoleArn.$"} if jsonpath else {"RoleArn"}
        for name in value:
            if name not in allowed:
                raise fail(f"Field '{name}' is not supported", inner.pointer)
        if "RoleArn" not in value and "RoleArn.$" not in value:
            raise fail("The field 'RoleArn' is required but was missing", inner.pointer)
        if "RoleArn.$" in value:
            role_path = inner.string("RoleArn.$")
            assert role_path is not None
            compile_path(role_path, "RoleArn.$", inner.pointer)
        else:
            inner.string("RoleArn")
        return value

    def choice(self, fields: Fields, common: dict[str, Any], language: QueryLanguage) -> Choice:
        """A Choice state (ASL "Choice State"); ``Choices`` is a non-empty array of rules."""
        fields.require("Choices")
        rules = fields.array("Choices", non_empty=True)
        assert rules is not None
        base = fields.at("Choices")
        jsonpath = language == "JSONPath"
        rule_assign: list[Value | None] = []
        rule_output: list[Value | None] = []
        for index, rule in enumerate(rules):
            assign: Value | None = None
            output: Value | None = None
            if isinstance(rule, Mapping):
                rule_fields = Fields(rule, f"{base}[{index}]")
                assign = rule_fields.assign(language)
                output = rule_fields.output(language)
            rule_assign.append(assign)
            rule_output.append(output)
        compiled = tuple(
            ChoiceRule.compile(rule, f"{base}[{index}]", top_level=True, query_language=language)
            for index, rule in enumerate(rules)
        )
        io = io_paths(fields, result=False) if jsonpath else IOPaths()
        output_value: Value | None = common.pop("output_value")
        if jsonpath:
            output_value = (
                EmptyObject(field="Output")
                if io.output_path_null
                else Reference(field="Output", path=io.output_path or ROOT_PATH)
            )
        elif output_value is None:
            output_value = StateInput(field="Output")
        return Choice(
            choices=compiled,
            default=fields.string("Default"),
            rule_assign=tuple(rule_assign),
            rule_output=tuple(rule_output),
            output_value=output_value,
            io=io,
            **common,
        )

    def wait(self, fields: Fields, common: dict[str, Any], jsonpath: bool) -> Wait:
        """A Wait state: exactly one of ``Seconds``, ``Timestamp``, ``SecondsPath``,
        ``TimestampPath`` (ASL "Wait State")."""
        present = [
            name
            for name in ("Seconds", "Timestamp", "SecondsPath", "TimestampPath")
            if name in fields.raw
        ]
        if len(present) != 1:
            raise fail(
                "A Wait state must have exactly one of the fields "
                "'Seconds', 'Timestamp', 'SecondsPath' or 'TimestampPath'",
                fields.pointer,
            )
        values: dict[str, Any] = {
            "seconds": value_field(
                fields,
                "Seconds",
                jsonpath,
                lambda: fields.integer("Seconds", minimum=0, maximum=MAX_TIMEOUT),
            ),
            "timestamp": value_field(
                fields,
                "Timestamp",
                jsonpath,
                lambda: (
                    validate.check_timestamp(fields.raw["Timestamp"], fields.at("Timestamp"))
                    if "Timestamp" in fields.raw
                    else None
                ),
            ),
        }
        if jsonpath:
            values["io"] = io_paths(fields, result=False)
        return Wait(**values, **common)

    def fail_state(self, fields: Fields, common: dict[str, Any], jsonpath: bool) -> Fail:
        """A Fail state: ``Error``/``Cause`` or, in JSONPath, ``ErrorPath``/``CausePath``."""
        fields.exclusive("Error", "ErrorPath")
        fields.exclusive("Cause", "CausePath")
        values: dict[str, Any] = {}
        for field, key in (("Error", "error"), ("Cause", "cause")):
            raw = fields.raw.get(field)
            compiled: Value | None = None
            if not jsonpath and is_expr(raw):
                compiled = Expression(field=field, expression=jsonata.compile_expression(raw))
            else:
                text = fields.string(field)
                if text is not None:
                    compiled = Constant(field=field, value=text)
            if jsonpath and compiled is None:
                path_text = fields.string(f"{field}Path")
                if path_text is not None:
                    compiled = ReferenceOrCall(
                        field=field,
                        expression=PathExpression.compile(
                            path_text, f"{field}Path", fields.pointer
                        ),
                    )
            values[key] = compiled
        return Fail(**values, **common)

    def parallel(self, fields: Fields, common: dict[str, Any], jsonpath: bool) -> Parallel:
        """A Parallel state (ASL "Parallel State"); ``Branches`` is a non-empty array."""
        fields.require("Branches")
        raw_branches = fields.array("Branches", non_empty=True)
        assert raw_branches is not None
        base = fields.at("Branches")
        branches = tuple(
            self.nested(branch, f"{base}[{index}]", _BRANCH_FIELDS)
            for index, branch in enumerate(raw_branches)
        )
        values = work_fields(fields, jsonpath)
        return Parallel(
            branches=branches,
            retry=load_retry(fields),
            catch=load_catch(fields, jsonpath),
            **values,
            **common,
        )

    def map_state(self, fields: Fields, common: dict[str, Any], jsonpath: bool) -> Map:
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
        values["max_concurrency"] = value_field(
            fields, "MaxConcurrency", jsonpath, lambda: fields.integer("MaxConcurrency")
        )
        values["tolerated_failure_count"] = value_field(
            fields,
            "ToleratedFailureCount",
            jsonpath,
            lambda: fields.integer("ToleratedFailureCount"),
        )
        values["tolerated_failure_percentage"] = value_field(
            fields,
            "ToleratedFailurePercentage",
            jsonpath,
            lambda: fields.number("ToleratedFailurePercentage", 0, 100),
        )
        if "Label" in raw:
            values["label"] = validate.check_label(raw["Label"], fields.at("Label"))
        if jsonpath:
            selector = "ItemSelector" if "ItemSelector" in raw else "Parameters"
            items_path = fields.path("ItemsPath") if "ItemsPath" in raw else ROOT_PATH
            assert items_path is not None
            values.update(
                io=io_paths(fields, result=True),
                items=Reference(field="Items", path=items_path),
                item_selector=payload_value("ItemSelector", fields.payload(selector)),
                result_selector=fields.payload("ResultSelector"),
            )
        else:
            values.update(
                items=template_value("Items", raw["Items"])
                if "Items" in raw
                else StateInput(field="Items"),
                item_selector=None
                if raw.get("ItemSelector") is None
                else template_value("ItemSelector", raw["ItemSelector"]),
            )
        values["item_batcher"] = self.item_batcher(fields, jsonpath)
        reader = fields.mapping("ItemReader")
        if reader is not None:
            inner = Fields(reader, fields.at("ItemReader"))
            values["item_reader_arguments"] = arguments_value(inner, jsonpath)
            config = inner.mapping("ReaderConfig")
            if config is not None:
                config_fields = Fields(config, inner.at("ReaderConfig"))
                max_items = config.get("MaxItems")
                if not jsonpath and is_expr(max_items):
                    values["item_reader_max_items"] = Expression(
                        field="MaxItems", expression=jsonata.compile_expression(max_items)
                    )
                elif jsonpath and (path := config_fields.path("MaxItemsPath")) is not None:
                    values["item_reader_max_items"] = Reference(field="MaxItems", path=path)
        writer = fields.mapping("ResultWriter")
        if writer is not None:
            inner = Fields(writer, fields.at("ResultWriter"))
            values["result_writer_arguments"] = arguments_value(inner, jsonpath)
        return Map(
            processor=processor,
            item_reader=reader,
            result_writer=writer,
            retry=load_retry(fields),
            catch=load_catch(fields, jsonpath),
            **values,
            **common,
        )

    @staticmethod
    def processor_config(
        raw: Mapping[str, JSON], pointer: str
    ) -> tuple[Literal["INLINE", "DISTRIBUTED"], Literal["STANDARD", "EXPRESS"]]:
        """``ProcessorConfig``: ``Mode`` INLINE (default) or DISTRIBUTED, ``ExecutionType``."""
        fields = Fields(raw, pointer)
        config = fields.mapping("ProcessorConfig")
        if config is None:
            return "INLINE", "STANDARD"
        inner = Fields(config, fields.at("ProcessorConfig"))
        for name in config:
            if name not in ("Mode", "ExecutionType"):
                raise fail(f"Field '{name}' is not supported", inner.pointer)
        mode = inner.string("Mode") or "INLINE"
        if mode not in ("INLINE", "DISTRIBUTED"):
            raise fail(
                "The value for the field 'Mode' must be one of [INLINE, DISTRIBUTED]",
                inner.pointer,
            )
        execution_type = inner.string("ExecutionType") or "STANDARD"
        if execution_type not in ("STANDARD", "EXPRESS"):
            raise fail(
                "The value for the field 'ExecutionType' must be one of [STANDARD, EXPRESS]",
                inner.pointer,
            )
        return (
            cast("Literal['INLINE', 'DISTRIBUTED']", mode),
            cast("Literal['STANDARD', 'EXPRESS']", execution_type),
        )

    @staticmethod
    def item_batcher(fields: Fields, jsonpath: bool) -> ItemBatcher | None:
        """``ItemBatcher`` (ASL "ItemBatcher"): its sizes and ``BatchInput``, each one value."""
        raw = fields.mapping("ItemBatcher")
        if raw is None:
            return None
        inner = Fields(raw, fields.at("ItemBatcher"))
        if jsonpath:
            for name in raw:
                if name not in _BATCHER_FIELDS:
                    raise fail(f"Field '{name}' is not supported", inner.pointer)
            compiled_input = payload_value("BatchInput", inner.payload("BatchInput"))
        else:
            compiled_input = (
                template_value("BatchInput", raw["BatchInput"]) if "BatchInput" in raw else None
            )
        return ItemBatcher(
            max_items_per_batch=value_field(
                inner, "MaxItemsPerBatch", jsonpath, lambda: inner.integer("MaxItemsPerBatch")
            ),
            max_input_bytes_per_batch=value_field(
                inner,
                "MaxInputBytesPerBatch",
                jsonpath,
                lambda: inner.integer("MaxInputBytesPerBatch"),
            ),
            batch_input=compiled_input,
        )


_BATCHER_FIELDS: Final = frozenset(
    {
        "MaxItemsPerBatch",
        "MaxItemsPerBatchPath",
        "MaxInputBytesPerBatch",
        "MaxInputBytesPerBatchPath",
        "BatchInput",
    }
)


def value_field(
    fields: Fields, field: str, jsonpath: bool, constant: Callable[[], JSON]
) -> Value | None:
    """One field that takes a value, compiled once (issue 10): a JSONata ``{% %}`` string, a
    constant (read and checked by ``constant``, ``None`` when absent) or, in JSONPath, its
    ``...Path`` form; ``None`` when the definition gives none of them."""
    raw = fields.raw.get(field)
    if not jsonpath and is_expr(raw):
        return Expression(field=field, expression=jsonata.compile_expression(raw))
    value = constant()
    if value is not None:
        return Constant(field=field, value=value)
    if jsonpath:
        path = fields.path(f"{field}Path")
        if path is not None:
            return Reference(field=field, path=path)
    return None


def arguments_value(fields: Fields, jsonpath: bool) -> Value | None:
    """An ItemReader's or ResultWriter's ``Parameters`` (a JSONPath payload template) or
    ``Arguments`` (a JSONata template), named by its key; ``None`` when absent."""
    if jsonpath:
        return payload_value("Parameters", fields.payload("Parameters"))
    if "Arguments" not in fields.raw:
        return None
    return template_value("Arguments", fields.raw["Arguments"])
