"""The fuzz suite's building blocks: JSON values (benign and hostile), JSONPath and JSONata
machines over every state type and field, the recorded AWS corpus, and mutation.

Every generator is a pure function of a ``random.Random``, so a case is rebuilt from its seed
alone (``benchmarks.fuzz_families.make_case``). ``mutate`` derives the extra definitions the
load phase counts from a case (key deletions, type swaps, hostile values planted in any field);
it copies only the path to the node it edits and plants hostile values from a pool built once,
so a mutation costs a fraction of the load it feeds.

Imports only the standard library.
"""

from __future__ import annotations

import functools
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, final

__all__ = [
    "ACCOUNT",
    "EVIL_REGEXES",
    "INTRINSICS",
    "REGION",
    "Case",
    "corpus",
    "hostile_pool",
    "hostile_value",
    "jsonata_machine",
    "machine",
    "machine_arn",
    "make_input",
    "map_fields",
    "mutate",
    "mutate_text",
    "nested_dict",
    "nested_list",
    "value",
]

JSON = Any

REGION: Final = "us-east-1"
ACCOUNT: Final = "123456789012"
CONFORMANCE: Final = Path(
    os.environ.get(
        "STATEMILL_CONFORMANCE",
        Path(__file__).resolve().parents[2] / "shared" / "conformance",
    )
)
LAMBDA: Final = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:"
#: Handler names the fuzz worker registers (see ``benchmarks.fuzz.HANDLERS``).
RESOURCES: Final = (
    "Ok",
    "Fail",
    "Boom",
    "Random",
    "Slow",
    "Missing",
    LAMBDA + "Ok",
    LAMBDA + "Boom",
    "arn:aws:states:::lambda:invoke",
)
ERRORS: Final = (
    "States.ALL",
    "States.TaskFailed",
    "States.Timeout",
    "States.Runtime",
    "States.HeartbeatTimeout",
    "States.IntrinsicFailure",
    "States.QueryEvaluationError",
    "Handler.Failed",
    "ValueError",
)
PATHS: Final = (
    "$",
    "$.a",
    "$.b",
    "$.a.b",
    "$.list[0]",
    "$.list[1:]",
    "$.list[-1:]",
    "$.list[*]",
    "$..a",
    "$.list[?(@.a > 1)]",
    "$.list[?(@.s =~ /a.*/)]",
    "$$.Execution.Id",
    "$$.State.Name",
    "$$.Map.Item.Value",
    "$.missing",
    "$['a']",
)
#: Paths a Choice rule's ``Variable`` accepts (filters, slices and wildcards it refuses).
VARIABLES: Final = ("$", "$.a", "$.b", "$.a.b", "$.list[0]", "$.n", "$.s", "$.flag", "$.missing")
REFERENCE_PATHS: Final = ("$", "$.a", "$.b", "$.a.b", "$.list[0]", "$.new.deep", "$.s")
INTRINSICS: Final = (
    "States.Format('x={} y={}', $.a, $.b)",
    "States.StringToJson($.s)",
    "States.JsonToString($)",
    "States.Array($.a, 1, 'two', null)",
    "States.ArrayPartition($.list, 2)",
    "States.ArrayContains($.list, $.a)",
    "States.ArrayRange(0, 10, 3)",
    "States.ArrayGetItem($.list, 0)",
    "States.ArrayLength($.list)",
    "States.ArrayUnique($.list)",
    "States.Base64Encode($.s)",
    "States.Base64Decode($.s)",
    "States.Hash($.s, 'SHA-256')",
    "States.JsonMerge($.a, $.b, false)",
    "States.MathRandom(1, 999)",
    "States.MathAdd($.n, 1)",
    "States.StringSplit($.s, ',')",
    "States.UUID()",
    "States.Format('{}', States.ArrayLength(States.Array(1, 2)))",
)
JSONATA: Final = (
    "$states.input",
    "$states.input.a",
    "$states.input.list[0]",
    "$count($states.input.list)",
    "$sum($states.input.list[$type($) = 'number'])",
    "$string($states.input)",
    "$states.context.Execution.Id",
    "$uppercase($string($states.input.s))",
    "$states.input.n * 2",
    "$exists($states.input.missing)",
    "{'k': $states.input.a}",
    "[1, 2, 3][$ > 1]",
    "$random()",
    "$uuid()",
    "$partition([1,2,3,4,5], 2)",
    "$range(0, 10, 2)",
    "$hash('abc', 'SHA-256')",
    "$parse('{\"a\": 1}')",
    "$x",
    "$states.result",
    "$states.errorOutput",
    "$map([1,2,3], function($v) { $v * 2 })",
    "$join(['a', 'b'], ',')",
    "$states.input.n > 3",
    "$not($states.input.flag)",
    "1/0",
    "$undefinedFunction()",
    "$states.input.a.b.c.d",
)
CONDITIONS: Final = (
    "{% $states.input.n > 3 %}",
    "{% $exists($states.input.a) %}",
    "{% $states.input.s = 'a' %}",
    "{% true %}",
    "{% $states.input %}",
    "{% 'text' %}",
    "{% $x = 1 %}",
)
#: Strings a regex engine that backtracks takes exponential time on.
EVIL_REGEXES: Final = ("(a+)+b", "(a|a)+b", "(a|aa)+b", "(a*)*b", "(.*a){20}", "^(a+)+$")


@final
@dataclass(frozen=True, kw_only=True)
class Case:
    """One generated definition and input.

    ``definition`` is a decoded object (possibly with non-string keys or lone surrogates) or a
    JSON text (the malformed family). ``name`` is the state machine name the case must be
    created under (self-starting machines refer to their own ARN).
    """

    family: str
    seed: int
    definition: JSON
    input: JSON
    machine_type: str = "STANDARD"
    name: str = ""
    notes: list[str] = field(default_factory=list)

    def machine_arn(self) -> str:
        """The ARN the runtime gives the machine when created as ``name``."""
        return machine_arn(self.name)


def machine_arn(name: str) -> str:
    """The ARN of state machine ``name`` in the fuzz runtime's region and account."""
    return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------


def scalar(rng: random.Random) -> JSON:
    """A small JSON scalar."""
    pick = rng.randrange(7)
    if pick == 0:
        return None
    if pick == 1:
        return rng.random() < 0.5
    if pick == 2:
        return rng.randint(-1000, 1000)
    if pick == 3:
        return rng.uniform(-1e6, 1e6)
    if pick == 4:
        return rng.choice(["", "a", "x,y,z", "aaaa", "ab", '{"a": 1}', "2030-01-01T00:00:00Z"])
    if pick == 5:
        return "".join(rng.choice('ab,{}[]"\\ é') for _ in range(rng.randrange(8)))
    return rng.choice([0, 1, -1, 0.5, 1e3])


def value(rng: random.Random, depth: int = 0) -> JSON:
    """A small JSON value, nested at most three deep."""
    if depth >= 3 or rng.random() < 0.5:
        return scalar(rng)
    if rng.random() < 0.5:
        return [value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice("abnsx"): value(rng, depth + 1) for _ in range(rng.randrange(4))}


def nested_list(depth: int, leaf: JSON = 1) -> JSON:
    """``[[[...leaf...]]]`` ``depth`` deep, built without recursion."""
    out: JSON = leaf
    for _ in range(depth):
        out = [out]
    return out


def nested_dict(depth: int, leaf: JSON = 1, key: str = "a") -> JSON:
    """``{"a": {"a": ...}}`` ``depth`` deep, built without recursion."""
    out: JSON = leaf
    for _ in range(depth):
        out = {key: out}
    return out


def hostile_value(rng: random.Random) -> JSON:
    """A value that has broken a runtime before: huge, deep, odd numbers, lone surrogates."""
    pick = rng.randrange(16)
    if pick == 0:
        return 10 ** rng.choice([19, 20, 40, 400, 4000])
    if pick == 1:
        return -(2 ** rng.choice([63, 64, 65, 128, 1100]))
    if pick == 2:
        return rng.choice([1e308, -1e308, 5e-324, -0.0, 1e30, 2.0**53, 2.0**53 + 2])
    if pick == 3:
        return "\ud800" + rng.choice(["", "x", "\udfff"])
    if pick == 4:
        return {"\udc00": 1}
    if pick == 5:
        return nested_list(rng.choice([50, 200, 999, 1001, 5000]))
    if pick == 6:
        return nested_dict(rng.choice([50, 200, 999, 1001, 5000]))
    if pick == 7:
        return "a" * rng.choice([1000, 100_000, 300_000])
    if pick == 8:
        return list(range(rng.choice([1000, 10_000, 60_000])))
    if pick == 9:
        return {str(i): i for i in range(rng.choice([100, 5000]))}
    if pick == 10:
        return rng.choice(["", " ", "\x00", "\u2028", "\U0001f600" * 10, "🙂" * 1000])
    if pick == 11:
        return rng.choice(["NaN", "Infinity", "-0", "1e400", "0x10", "9" * 400])
    if pick == 12:
        return rng.choice(["$", "$.", "$..", "$[", "$$", "States.Format(", "{% %}", "{%"])
    if pick == 13:
        return {1: "integer key"} if rng.random() < 0.5 else {None: 1}
    if pick == 14:
        return rng.choice([float("nan"), float("inf"), -float("inf")])
    return value(rng)


def make_input(rng: random.Random, hostile: float = 0.1) -> JSON:
    """An execution input: mostly the object shape the generated paths read."""
    if rng.random() < hostile:
        return hostile_value(rng)
    if rng.random() < 0.1:
        return value(rng)
    data: dict[str, JSON] = {
        "a": value(rng),
        "b": value(rng),
        "n": rng.choice([0, 1, 5, -3, 2.5, "7"]),
        "s": rng.choice(["a,b,c", "aaaa", "", '{"k": [1]}', "YWJj", "x"]),
        "flag": rng.random() < 0.5,
        "list": [value(rng) for _ in range(rng.randrange(5))],
    }
    if rng.random() < hostile:
        data[rng.choice(list(data))] = hostile_value(rng)
    return data


# ---------------------------------------------------------------------------------------------
# JSONPath machines
# ---------------------------------------------------------------------------------------------


def template(rng: random.Random, depth: int = 0) -> dict[str, JSON]:
    """A Parameters / ResultSelector / ItemSelector payload template."""
    out: dict[str, JSON] = {}
    for _ in range(rng.randrange(1, 4)):
        pick = rng.randrange(4)
        if pick == 0:
            out[rng.choice("xyz")] = value(rng)
        elif pick == 1:
            out[rng.choice("pqr") + ".$"] = rng.choice(PATHS)
        elif pick == 2:
            out[rng.choice("ijk") + ".$"] = rng.choice(INTRINSICS)
        elif depth < 2:
            out["t"] = template(rng, depth + 1)
    return out


def _retry(rng: random.Random) -> list[dict[str, JSON]]:
    out: list[dict[str, JSON]] = []
    for _ in range(rng.randrange(1, 3)):
        retrier: dict[str, JSON] = {"ErrorEquals": [rng.choice(ERRORS[1:])]}
        if rng.random() < 0.5:
            retrier["IntervalSeconds"] = rng.randint(1, 30)
        if rng.random() < 0.5:
            retrier["MaxAttempts"] = rng.randint(0, 4)
        if rng.random() < 0.4:
            retrier["BackoffRate"] = rng.choice([1, 1.5, 2.0, 10])
        if rng.random() < 0.3:
            retrier["MaxDelaySeconds"] = rng.randint(1, 100)
        if rng.random() < 0.3:
            retrier["JitterStrategy"] = rng.choice(["FULL", "NONE"])
        out.append(retrier)
    if rng.random() < 0.3:
        out.append({"ErrorEquals": ["States.ALL"], "MaxAttempts": 1})
    return out


def _catch(rng: random.Random, targets: list[str]) -> list[dict[str, JSON]]:
    catcher: dict[str, JSON] = {
        "ErrorEquals": [rng.choice(ERRORS)],
        "Next": rng.choice(targets),
    }
    if rng.random() < 0.5:
        catcher["ResultPath"] = rng.choice(["$.error", "$", None])
    return [catcher]


def _choice_rule(rng: random.Random, depth: int = 0) -> dict[str, JSON]:
    if depth < 2 and rng.random() < 0.25:
        op = rng.choice(["And", "Or", "Not"])
        if op == "Not":
            return {"Not": _choice_rule(rng, depth + 1)}
        return {op: [_choice_rule(rng, depth + 1) for _ in range(rng.randrange(1, 3))]}
    variable = rng.choice(VARIABLES)
    test: dict[str, JSON] = rng.choice(
        [
            {"NumericGreaterThan": 0},
            {"NumericEquals": 1.5},
            {"NumericLessThanPath": "$.n"},
            {"StringEquals": "x"},
            {"StringEqualsPath": "$.s"},
            {"StringLessThan": "m"},
            {"StringMatches": rng.choice(["*a*", "a\\*b", "*", "x*y*z", "\\\\*"])},
            {"IsPresent": True},
            {"IsNull": False},
            {"IsNumeric": True},
            {"IsString": True},
            {"IsBoolean": True},
            {"IsTimestamp": True},
            {"BooleanEquals": True},
            {"BooleanEqualsPath": "$.flag"},
            {"TimestampGreaterThan": "2020-01-01T00:00:00Z"},
        ]
    )
    return {"Variable": variable, **test}


def _io(rng: random.Random, state: dict[str, JSON], *, result: bool = True) -> None:
    for key in ("InputPath", "OutputPath", *(("ResultPath",) if result else ())):
        if rng.random() < 0.25:
            choices = REFERENCE_PATHS if key == "ResultPath" else PATHS
            state[key] = rng.choice([*choices, None])


def _flow(rng: random.Random, state: dict[str, JSON], names: list[str], index: int) -> None:
    if index + 1 < len(names) and rng.random() < 0.95:
        later = names[index + 1 :]
        state["Next"] = later[0] if rng.random() < 0.93 else rng.choice(later)
    else:
        state["End"] = True


def _wait_fields(rng: random.Random) -> dict[str, JSON]:
    return rng.choice(
        [
            {"Seconds": rng.choice([0, 1, 60, 86_400])},
            {"SecondsPath": "$.n"},
            {"Timestamp": "2030-01-01T00:00:00Z"},
            {"TimestampPath": "$.s"},
        ]
    )


def machine(rng: random.Random, depth: int = 0, prefix: str = "", *, top: bool = True) -> JSON:
    """A JSONPath machine (or Parallel branch / Map processor) over every state type."""
    count = rng.randint(1, 5 if depth == 0 else 3)
    names = [f"{prefix}S{i}" for i in range(count)]
    kinds = ["Pass", "Task", "Choice", "Wait", "Succeed", "Fail"]
    if depth < 2:
        kinds += ["Parallel", "Map"]
    states: dict[str, JSON] = {}
    for index, name in enumerate(names):
        last = index + 1 == len(names)
        allowed = [k for k in kinds if not (last and k == "Choice")]
        if not last:
            allowed = [k for k in allowed if k not in ("Succeed", "Fail")] or allowed
        kind = rng.choice(allowed)
        state: dict[str, JSON] = {"Type": kind}
        later = names[index + 1 :] or [name]
        if rng.random() < 0.1:
            state["Comment"] = "fuzz"
        if kind == "Pass":
            if rng.random() < 0.4:
                state["Result"] = value(rng)
            if rng.random() < 0.4:
                state["Parameters"] = template(rng)
            _io(rng, state)
            _flow(rng, state, names, index)
        elif kind == "Task":
            resource = rng.choice(RESOURCES)
            state["Resource"] = resource
            if resource.endswith("lambda:invoke"):
                state["Parameters"] = {"FunctionName": "Ok", "Payload.$": "$"}
            elif rng.random() < 0.4:
                state["Parameters"] = template(rng)
            if rng.random() < 0.3:
                state["ResultSelector"] = template(rng)
            if rng.random() < 0.3:
                timeout = rng.randint(1, 300)
                state["TimeoutSeconds"] = timeout
                if timeout > 1 and rng.random() < 0.5:
                    state["HeartbeatSeconds"] = rng.randint(1, timeout - 1)
            elif rng.random() < 0.1:
                state["TimeoutSecondsPath"] = "$.n"
            _io(rng, state)
            _flow(rng, state, names, index)
        elif kind == "Choice":
            state["Choices"] = [
                {**_choice_rule(rng), "Next": later[0] if not c else rng.choice(later)}
                for c in range(rng.randrange(1, 3))
            ]
            if rng.random() < 0.7:
                state["Default"] = rng.choice(later)
            _io(rng, state, result=False)
        elif kind == "Wait":
            state.update(_wait_fields(rng))
            _io(rng, state, result=False)
            _flow(rng, state, names, index)
        elif kind == "Fail":
            if rng.random() < 0.5:
                state["Error"] = rng.choice(["Custom.Error", "States.Runtime", "X"])
            if rng.random() < 0.5:
                state["Cause"] = "because"
            elif rng.random() < 0.3:
                state["CausePath"] = rng.choice(["$.s", "States.Format('c {}', $.a)"])
            if "Error" not in state and rng.random() < 0.2:
                state["ErrorPath"] = "$.s"
        elif kind == "Parallel":
            state["Branches"] = [
                machine(rng, depth + 1, f"{name}b{b}_", top=False) for b in range(rng.randint(1, 2))
            ]
            if rng.random() < 0.3:
                state["ResultSelector"] = template(rng)
            _io(rng, state)
            _flow(rng, state, names, index)
        elif kind == "Map":
            map_fields(rng, state, depth, name)
            _io(rng, state)
            _flow(rng, state, names, index)
        if kind in ("Task", "Parallel", "Map"):
            if rng.random() < 0.4:
                state["Retry"] = _retry(rng)
            if not last and rng.random() < 0.4:
                state["Catch"] = _catch(rng, later)
        states[name] = state
    definition: dict[str, JSON] = {"StartAt": names[0], "States": states}
    if top and rng.random() < 0.2:
        definition["TimeoutSeconds"] = rng.randint(1, 500)
    return definition


def map_fields(rng: random.Random, state: dict[str, JSON], depth: int, name: str) -> None:
    processor = machine(rng, depth + 1, f"{name}_", top=False)
    distributed = rng.random() < 0.3
    if distributed:
        processor["ProcessorConfig"] = {
            "Mode": "DISTRIBUTED",
            "ExecutionType": rng.choice(["STANDARD", "EXPRESS"]),
        }
        if rng.random() < 0.4:
            state["ItemBatcher"] = rng.choice(
                [
                    {"MaxItemsPerBatch": rng.randint(1, 5)},
                    {"MaxInputBytesPerBatch": rng.randint(10, 1000)},
                    {"MaxItemsPerBatch": 2, "BatchInput": {"k": 1}},
                    {"MaxItemsPerBatchPath": "$.n"},
                ]
            )
        if rng.random() < 0.3:
            state["Label"] = "L"
    elif rng.random() < 0.2:
        processor["ProcessorConfig"] = {"Mode": "INLINE"}
    state["ItemProcessor"] = processor
    if rng.random() < 0.6:
        state["ItemsPath"] = rng.choice(["$.list", "$", "$.a", "$.missing"])
    for key, values in (
        ("MaxConcurrency", [0, 1, 3, 1000]),
        ("ToleratedFailureCount", [0, 1, 5]),
        ("ToleratedFailurePercentage", [0, 50, 100]),
    ):
        if rng.random() < 0.3:
            state[key] = rng.choice(values)
    if rng.random() < 0.1:
        key = rng.choice(["MaxConcurrency", "ToleratedFailureCount"])
        state.pop(key, None)
        state[key + "Path"] = "$.n"
    if rng.random() < 0.4:
        state["ItemSelector"] = rng.choice(
            [{"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"}, template(rng)]
        )


# ---------------------------------------------------------------------------------------------
# JSONata machines
# ---------------------------------------------------------------------------------------------


def _expr(rng: random.Random) -> str:
    return "{% " + rng.choice(JSONATA) + " %}"


def _jsonata_value(rng: random.Random) -> JSON:
    pick = rng.randrange(4)
    if pick == 0:
        return _expr(rng)
    if pick == 1:
        return {rng.choice("xyz"): _expr(rng), "c": value(rng)}
    if pick == 2:
        return [_expr(rng), value(rng)]
    return value(rng)


def jsonata_machine(rng: random.Random, depth: int = 0, prefix: str = "") -> JSON:
    """A JSONata-mode machine: Arguments, Output, Assign, Condition and ``{% %}`` fields."""
    count = rng.randint(1, 4)
    names = [f"{prefix}J{i}" for i in range(count)]
    states: dict[str, JSON] = {}
    for index, name in enumerate(names):
        last = index + 1 == len(names)
        later = names[index + 1 :] or [name]
        kinds = ["Pass", "Task", "Wait"] + ([] if last else ["Choice"]) + ["Succeed", "Fail"]
        if depth < 1:
            kinds += ["Parallel", "Map"]
        if not last:
            kinds = [k for k in kinds if k not in ("Succeed", "Fail")]
        kind = rng.choice(kinds)
        state: dict[str, JSON] = {"Type": kind}
        if kind not in ("Choice", "Fail") and rng.random() < 0.5:
            state["Output"] = _jsonata_value(rng)
        if kind not in ("Fail", "Succeed") and rng.random() < 0.4:
            state["Assign"] = {rng.choice(["x", "y", "z"]): _jsonata_value(rng)}
        if kind == "Task":
            state["Resource"] = rng.choice(RESOURCES)
            if rng.random() < 0.6:
                state["Arguments"] = _jsonata_value(rng)
            if rng.random() < 0.3:
                state["TimeoutSeconds"] = rng.choice([5, "{% 10 %}", "{% $states.input.n %}"])
            if rng.random() < 0.3:
                state["Retry"] = _retry(rng)
            if not last and rng.random() < 0.3:
                state["Catch"] = [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "Next": rng.choice(later),
                        "Output": "{% $states.errorOutput %}",
                    }
                ]
        elif kind == "Wait":
            state["Seconds"] = rng.choice([0, 3, "{% $states.input.n %}", "{% 1e30 %}"])
        elif kind == "Choice":
            state["Choices"] = [
                {"Condition": rng.choice(CONDITIONS), "Next": rng.choice(later)}
                for _ in range(rng.randrange(1, 3))
            ]
            if rng.random() < 0.7:
                state["Default"] = rng.choice(later)
        elif kind == "Fail":
            if rng.random() < 0.5:
                state["Error"] = rng.choice(["E", "{% 'E' & $string($states.input.n) %}"])
            if rng.random() < 0.5:
                state["Cause"] = rng.choice(["c", "{% $string($states.input) %}"])
        elif kind == "Parallel":
            state["Branches"] = [jsonata_machine(rng, depth + 1, f"{name}b_")]
        elif kind == "Map":
            state["ItemProcessor"] = jsonata_machine(rng, depth + 1, f"{name}m_")
            state["Items"] = rng.choice(
                ["{% $states.input.list %}", "{% [1, 2, 3] %}", [1, 2], "{% $states.input %}"]
            )
            if rng.random() < 0.3:
                state["ItemSelector"] = {"v": "{% $states.context.Map.Item.Value %}"}
            if rng.random() < 0.3:
                state["MaxConcurrency"] = rng.choice([1, "{% 2 %}"])
        if kind not in ("Choice", "Succeed", "Fail"):
            if not last or rng.random() < 0.9:
                if last:
                    state["End"] = True
                else:
                    state["Next"] = later[0]
            else:
                state["End"] = True
        states[name] = state
    definition: dict[str, JSON] = {"StartAt": names[0], "States": states}
    if depth == 0:
        definition["QueryLanguage"] = "JSONata"
    return definition


# ---------------------------------------------------------------------------------------------
# The recorded corpus and mutation
# ---------------------------------------------------------------------------------------------


@functools.cache
def corpus() -> tuple[tuple[JSON, JSON, str], ...]:
    """(definition, input, machine type) of every recorded case and validation definition."""
    out: list[tuple[JSON, JSON, str]] = []
    for folder in ("cases", "validation"):
        for path in sorted((CONFORMANCE / folder).glob("*.json")):
            data = json.loads(path.read_text())
            definition = data.get("definition")
            if definition is None:
                definition = data.get("definition_text")
            if definition is None:
                continue
            out.append((definition, data.get("input", {}), data.get("machine_type", "STANDARD")))
    return tuple(out)


_FIELD_NAMES: Final = (
    "Type",
    "Next",
    "End",
    "Resource",
    "InputPath",
    "OutputPath",
    "ResultPath",
    "Parameters",
    "ResultSelector",
    "ItemSelector",
    "ItemsPath",
    "Items",
    "Arguments",
    "Output",
    "Assign",
    "Condition",
    "Choices",
    "Default",
    "Variable",
    "StringMatches",
    "Seconds",
    "SecondsPath",
    "Timestamp",
    "TimestampPath",
    "TimeoutSeconds",
    "HeartbeatSeconds",
    "Retry",
    "Catch",
    "ErrorEquals",
    "MaxAttempts",
    "BackoffRate",
    "IntervalSeconds",
    "MaxDelaySeconds",
    "MaxConcurrency",
    "ToleratedFailureCount",
    "ToleratedFailurePercentage",
    "ItemBatcher",
    "Branches",
    "ItemProcessor",
    "StartAt",
    "States",
    "QueryLanguage",
    "Result",
)


def mutate(definition: JSON, rng: random.Random, steps: int | None = None) -> JSON:
    """A mutated version of ``definition`` (1 to 3 edits; text definitions: text edits).

    Cheap by construction (the load phase makes about a million of them): each edit walks down
    from the root to one random container and copies only the containers on that path, so the
    rest of the tree is shared with ``definition`` (which is never modified; the runtime never
    mutates input JSON either). Hostile values are planted from a pre-built pool, not rebuilt.
    """
    if isinstance(definition, str | bytes):
        return mutate_text(definition if isinstance(definition, str) else "", rng)
    out = definition
    for _ in range(steps if steps is not None else rng.randint(1, 3)):
        out = _mutate_once(out, rng)
    return out


@functools.cache
def hostile_pool() -> tuple[JSON, ...]:
    """A fixed pool of ``hostile_value`` results (built once, shared by every mutation)."""
    return tuple(hostile_value(random.Random(f"pool:{i}")) for i in range(96))


@functools.cache
def _pool_parts() -> tuple[tuple[JSON, ...], tuple[JSON, ...]]:
    """The pool split into small values and big ones (a container or string past 1,000)."""
    small: list[JSON] = []
    big: list[JSON] = []
    for item in hostile_pool():
        size = len(item) if isinstance(item, str | list | dict) else 0
        (big if size > 1000 else small).append(item)
    return tuple(small), tuple(big)


def _hostile(rng: random.Random) -> JSON:
    """A pooled hostile value; a big one in 1 of 20 picks (every load walks a planted value
    whole, and a 60,000-item list would make most of the load phase's time)."""
    small, big = _pool_parts()
    return rng.choice(big if big and rng.random() < 0.05 else small)


def _child_container(node: JSON, rng: random.Random) -> tuple[Any, JSON] | None:
    """A random (key, child) of ``node`` whose child is a container, or None (a few tries)."""
    if isinstance(node, dict):
        keys = [k for k, v in node.items() if isinstance(v, dict | list)] if len(node) < 64 else []
        if not keys:
            for _ in range(3):
                if not node:
                    break
                key = rng.choice(list(node)) if len(node) < 64 else next(iter(node))
                if isinstance(node[key], dict | list):
                    return key, node[key]
            return None
        key = rng.choice(keys)
        return key, node[key]
    for _ in range(3):
        if not node:
            break
        index = rng.randrange(len(node))
        if isinstance(node[index], dict | list):
            return index, node[index]
    return None


def _mutate_once(root: JSON, rng: random.Random) -> JSON:
    if not isinstance(root, dict | list):
        return rng.choice([None, {}, [], {"StartAt": "X"}, _hostile(rng)])
    spine: list[tuple[JSON, Any]] = []
    node = root
    while len(spine) < 64 and rng.random() < 0.75:
        found = _child_container(node, rng)
        if found is None:
            break
        spine.append((node, found[0]))
        node = found[1]
    edited = _edit(node, rng)
    for parent, key in reversed(spine):
        copied = dict(parent) if isinstance(parent, dict) else list(parent)
        copied[key] = edited
        edited = copied
    return edited


def _edit(node: JSON, rng: random.Random) -> JSON:
    """One edit of a (shallow-copied) container."""
    pick = rng.randrange(8)
    if isinstance(node, dict):
        out = dict(node)
        keys = list(out) if len(out) < 64 else list(out)[:64]
        if pick == 0 and keys:
            del out[rng.choice(keys)]
        elif pick == 1 and keys:
            out[rng.choice(keys)] = _hostile(rng)
        elif pick == 2:
            out[rng.choice(_FIELD_NAMES)] = rng.choice(
                [value(rng), rng.choice(PATHS), _expr(rng), rng.choice(INTRINSICS)]
            )
        elif pick == 3 and keys:
            out[rng.choice(keys)] = rng.choice([None, 0, -1, "", [], {}, True, 99_999_999_999])
        elif pick == 4 and keys:
            key = rng.choice(keys)
            out[f"{key}{rng.choice(['.$', 'x', ''])}"] = out.pop(key)
        elif pick == 5:
            out["States"] = {"X": {"Type": "Pass", "End": True}}
        else:
            out[rng.choice(_FIELD_NAMES)] = value(rng)
        return out
    items = list(node)
    if not items:
        items.append(rng.choice([value(rng), _hostile(rng)]))
        return items
    index = rng.randrange(len(items))
    if pick < 3:
        del items[index]
    elif pick < 5:
        items.append(items[index] if pick == 3 else _hostile(rng))
    else:
        items[index] = rng.choice([value(rng), _hostile(rng), None])
    return items


def mutate_text(text: str, rng: random.Random) -> str:
    """A JSON text made malformed (or odd but well-formed) by one edit."""
    if not text:
        return rng.choice(["", "{", "null", "[]", "{}", '"x"'])
    pick = rng.randrange(9)
    cut = rng.randrange(len(text))
    if pick == 0:
        return text[:cut]
    if pick == 1:
        return text[:cut] + rng.choice('{}[],:"\\') + text[cut:]
    if pick == 2:
        return text[:cut] + "\\ud800" + text[cut:]
    if pick == 3:
        return text.replace("{", '{"StartAt": "Dup", ', 1)
    if pick == 4:
        return text[:cut] + rng.choice(["NaN", "Infinity", "1e400", "-", "0x1"]) + text[cut:]
    if pick == 5:
        depth = rng.choice([100, 1000, 100_000])
        return "[" * depth + "]" * depth
    if pick == 6:
        return '{"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": ' + "[" * 5000 + "]"
    if pick == 7:
        return text.replace('"', "'", 1)
    return "\ufeff" + text
