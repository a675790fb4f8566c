"""The fuzz suite's families: each turns a ``random.Random`` into one :class:`Case`.

``random`` (JSONPath machines over every state type and field), ``jsonata`` (JSONata mode:
Arguments, Output, Assign, Condition), ``corpus`` (the recorded AWS definitions of
``../shared/conformance``, mutated), and the hostile families of issue 11: ``malformed``
(broken JSON, non-string keys, lone surrogates), ``deep``, ``huge``, ``regex`` (backtracking
``=~`` filters), ``string_matches`` (many ``*``), ``jsonata_blowup``, ``intrinsic_blowup``,
``retry`` (huge MaxAttempts and BackoffRate), ``timers`` (SecondsPath 1e30, far timestamps),
``nested`` (self-starting machines), ``loops`` (Choice loops) and ``map``.

``make_case(family, seed)`` is deterministic: the supervisor in ``benchmarks.fuzz`` rebuilds
the case a frozen worker was running from its seed.

Imports only the standard library and ``benchmarks.fuzz_gen``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any, Final

from benchmarks.fuzz_gen import (
    EVIL_REGEXES,
    INTRINSICS,
    Case,
    corpus,
    hostile_value,
    jsonata_machine,
    machine,
    machine_arn,
    make_input,
    map_fields,
    mutate,
    mutate_text,
    nested_dict,
    nested_list,
)

__all__ = ["FAMILIES", "Generator", "make_case"]

JSON = Any

# ---------------------------------------------------------------------------------------------
# Hostile families
# ---------------------------------------------------------------------------------------------


def _one(state: dict[str, JSON], **top: JSON) -> dict[str, JSON]:
    """A machine of one state (made terminal) plus top-level fields."""
    if state["Type"] not in ("Choice", "Succeed", "Fail"):
        state.setdefault("End", True)
    return {"StartAt": "S", "States": {"S": state}, **top}


def family_random(rng: random.Random) -> Case:
    return Case(family="random", seed=0, definition=machine(rng), input=make_input(rng, 0.05))


def family_jsonata(rng: random.Random) -> Case:
    return Case(
        family="jsonata", seed=0, definition=jsonata_machine(rng), input=make_input(rng, 0.05)
    )


def family_corpus(rng: random.Random) -> Case:
    entries = corpus()
    if not entries:
        return family_random(rng)
    definition, data, machine_type = rng.choice(entries)
    if rng.random() < 0.7:
        definition = mutate(definition, rng)
    if rng.random() < 0.2:
        data = mutate(data, rng) if isinstance(data, dict | list) else hostile_value(rng)
    return Case(
        family="corpus", seed=0, definition=definition, input=data, machine_type=machine_type
    )


def family_malformed(rng: random.Random) -> Case:
    base = machine(rng)
    pick = rng.randrange(6)
    definition: JSON
    if pick == 0:
        definition = mutate_text(json.dumps(base), rng)
    elif pick == 1:
        definition = mutate(base, rng, steps=rng.randint(3, 8))
    elif pick == 2:
        # Non-string keys, at the top, in States or in a template.
        definition = dict(base)
        target = rng.choice(["top", "states", "template"])
        if target == "top":
            definition[7] = "x"
        elif target == "states":
            definition["States"] = {**base["States"], 1: {"Type": "Pass", "End": True}}
        else:
            definition["States"] = {
                "S": {"Type": "Pass", "Parameters": {2: "x", "a.$": "$"}, "End": True}
            }
            definition["StartAt"] = "S"
    elif pick == 3:
        definition = _one(
            {"Type": "Pass", "Result": rng.choice(["\ud800", {"\udfff": 1}, ["\ud83d"]])}
        )
    elif pick == 4:
        definition = rng.choice([None, [], "x", 1, {"StartAt": 1}, {"States": []}, {}])
    else:
        definition = json.dumps(base).encode()[: rng.randrange(1, 200)] + b"\xff\xfe"
    return Case(family="malformed", seed=0, definition=definition, input=make_input(rng, 0.5))


def family_deep(rng: random.Random) -> Case:
    depth = rng.choice([10, 50, 100, 165, 300, 1000, 3000])
    pick = rng.randrange(5)
    definition: JSON
    data: JSON = {}
    if pick == 0:
        # Parallel inside Parallel, ``depth`` deep.
        inner: JSON = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
        for level in range(depth):
            inner = {
                "StartAt": f"P{level}",
                "States": {f"P{level}": {"Type": "Parallel", "Branches": [inner], "End": True}},
            }
        definition = inner
    elif pick == 1:
        definition = _one({"Type": "Pass", "Parameters": nested_dict(depth, "$", key="a")})
        if rng.random() < 0.5:
            definition = _one({"Type": "Pass", "Parameters": nested_dict(depth, {"v.$": "$"})})
    elif pick == 2:
        rule: JSON = {"Variable": "$.a", "IsPresent": True}
        for _ in range(depth):
            rule = {"Not": rule} if rng.random() < 0.5 else {"And": [rule]}
        definition = {
            "StartAt": "C",
            "States": {
                "C": {"Type": "Choice", "Choices": [{**rule, "Next": "E"}], "Default": "E"},
                "E": {"Type": "Succeed"},
            },
        }
    elif pick == 3:
        definition = machine(rng)
        data = rng.choice([nested_list(depth), nested_dict(depth), {"a": nested_list(depth)}])
    else:
        expr = "States.Array(" * min(depth, 500) + "1" + ")" * min(depth, 500)
        definition = _one({"Type": "Pass", "Parameters": {"x.$": expr}})
        if rng.random() < 0.5:
            jexpr = "{% " + "[" * depth + "1" + "]" * depth + " %}"
            definition = _one({"Type": "Pass", "Output": jexpr}, QueryLanguage="JSONata")
    return Case(family="deep", seed=0, definition=definition, input=data)


def family_huge(rng: random.Random) -> Case:
    big = hostile_value(rng)
    pick = rng.randrange(6)
    definition: JSON
    data: JSON = {"a": big, "n": 10 ** rng.choice([20, 300, 5000]), "list": [big]}
    if pick == 0:
        definition = _one({"Type": "Pass", "Result": big})
    elif pick == 1:
        definition = _one(
            {"Type": "Pass", "Parameters": {"x.$": rng.choice(INTRINSICS), "y.$": "$.a"}}
        )
    elif pick == 2:
        definition = _one(
            {
                "Type": "Pass",
                "Output": rng.choice(
                    [
                        "{% $states.input.n * $states.input.n %}",
                        "{% $states.input.n + 1 %}",
                        "{% 99999999999999999999 * 99999999999999999999 %}",
                        "{% $string($states.input.n) %}",
                        "{% $power(10, 400) %}",
                        "{% $floor($states.input.n) %}",
                        "{% $formatNumber($states.input.n, '#,##0') %}",
                        "{% $states.input.a %}",
                    ]
                ),
            },
            QueryLanguage="JSONata",
        )
    elif pick == 3:
        definition = _one({"Type": "Task", "Resource": "Random", "ResultSelector": {"r.$": "$"}})
    elif pick == 4:
        definition = machine(rng)
    else:
        definition = {
            "StartAt": "C",
            "States": {
                "C": {
                    "Type": "Choice",
                    "Choices": [
                        {"Variable": "$.n", "NumericGreaterThan": 1, "Next": "E"},
                        {"Variable": "$.a", "StringEquals": "x", "Next": "E"},
                    ],
                    "Default": "E",
                },
                "E": {"Type": "Succeed"},
            },
        }
    return Case(family="huge", seed=0, definition=definition, input=data)


def family_regex(rng: random.Random) -> Case:
    length = rng.choice([20, 30, 40, 1000, 100_000])
    pattern = rng.choice(EVIL_REGEXES)
    subject = "a" * length + rng.choice(["", "!", "c"])
    path = f"$.items[?(@.s =~ /{pattern}/)]"
    field = rng.choice(["InputPath", "OutputPath", "Parameters", "ItemSelector", "ResultSelector"])
    definition: JSON
    if field == "Parameters":
        definition = _one({"Type": "Pass", "Parameters": {"m.$": path}})
    elif field == "ItemSelector":
        definition = _one(
            {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemSelector": {"m.$": path.replace("$.", "$$.Execution.Input.", 1)},
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
            }
        )
    elif field == "ResultSelector":
        definition = _one({"Type": "Task", "Resource": "Ok", "ResultSelector": {"m.$": path}})
    else:
        definition = _one({"Type": "Pass", field: path})
    if rng.random() < 0.3:
        definition = _one(
            {
                "Type": "Pass",
                "Output": f"{{% $match($states.input.items[0].s, /{pattern}/) %}}",
            },
            QueryLanguage="JSONata",
        )
    return Case(family="regex", seed=0, definition=definition, input={"items": [{"s": subject}]})


def family_string_matches(rng: random.Random) -> Case:
    stars = rng.choice([5, 20, 50, 200, 1000])
    pattern = "*a" * stars + rng.choice(["b", "*b", "\\*", ""])
    subject = "a" * rng.choice([100, 1000, 10_000, 100_000])
    definition = {
        "StartAt": "C",
        "States": {
            "C": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.s", "StringMatches": pattern, "Next": "E"}],
                "Default": "E",
            },
            "E": {"Type": "Succeed"},
        },
    }
    return Case(family="string_matches", seed=0, definition=definition, input={"s": subject})


_JSONATA_BLOWUPS: Final = (
    "$range(0, 1e9, 1)",
    "$count($range(0, 1e7, 1))",
    "[0..1e9]",
    "$count([0..1e7])",
    "$pad('', 1e9)",
    "$pad('x', -1e9, 'abc')",
    "$join($map([1..1e6], function($v) { 'xxxxxxxxxx' }))",
    "$map([1..10000], function($v) { [1..10000] })",
    "($f := function($n) { $f($n + 1) }; $f(0))",
    "($f := function($n) { $n > 1e8 ? $n : $f($n + 1) }; $f(0))",
    "($f := function($s) { $f($s & $s) }; $f('ab'))",
    "$reduce([1..1e6], function($a, $b) { $a & 'xx' }, '')",
    "$sort([1..1e6], function($a, $b) { $a < $b })",
    "$string([1..1e6])",
    "$sum([1..1e8])",
    "$fromMillis(1e30)",
    "$toMillis('99999-12-31')",
    "$power(2, 100000)",
    "$split($pad('', 1e8, 'a,'), ',')",
    "$replace($pad('', 1e6, 'a'), 'a', 'aaaa')",
    "$eval('$eval(\"1\")')",
    "$distinct([1..1e6])",
    "$zip([1..1e6], [1..1e6])",
    "$spread([1..1e6])",
    "$partition([1..1e6], 1)",
    "$hash($pad('', 1e9), 'SHA-256')",
    "$formatBase(99999999999999999999999, 2)",
    "$shuffle([1..1e6])",
)


def family_jsonata_blowup(rng: random.Random) -> Case:
    expr = "{% " + rng.choice(_JSONATA_BLOWUPS) + " %}"
    field = rng.choice(["Output", "Assign", "Arguments", "Condition", "Items"])
    definition: JSON
    if field == "Output":
        definition = _one({"Type": "Pass", "Output": expr}, QueryLanguage="JSONata")
    elif field == "Assign":
        definition = _one({"Type": "Pass", "Assign": {"x": expr}}, QueryLanguage="JSONata")
    elif field == "Arguments":
        definition = _one(
            {"Type": "Task", "Resource": "Ok", "Arguments": {"x": expr}}, QueryLanguage="JSONata"
        )
    elif field == "Condition":
        definition = {
            "QueryLanguage": "JSONata",
            "StartAt": "C",
            "States": {
                "C": {
                    "Type": "Choice",
                    "Choices": [{"Condition": expr, "Next": "E"}],
                    "Default": "E",
                },
                "E": {"Type": "Succeed"},
            },
        }
    else:
        definition = _one(
            {
                "Type": "Map",
                "Items": expr,
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
            },
            QueryLanguage="JSONata",
        )
    return Case(family="jsonata_blowup", seed=0, definition=definition, input=make_input(rng, 0))


_INTRINSIC_BLOWUPS: Final = (
    "States.ArrayRange(0, 1000000000, 1)",
    "States.ArrayRange(0, 99999999999999999999, 1)",
    "States.ArrayRange(0, 10, 0)",
    "States.ArrayPartition($.big, 1)",
    "States.StringSplit($.long, '')",
    "States.StringSplit($.long, 'a')",
    "States.Format($.long, $.long)",
    "States.Hash($.long, 'SHA-512')",
    "States.MathAdd($.huge, $.huge)",
    "States.MathAdd(99999999999999999999, 1)",
    "States.MathRandom(0, 99999999999999999999)",
    "States.MathRandom(5, 1)",
    "States.Base64Encode($.surrogate)",
    "States.Base64Decode($.long)",
    "States.Hash($.surrogate, 'MD5')",
    "States.JsonToString($.deep)",
    "States.StringToJson($.deeptext)",
    "States.ArrayUnique($.big)",
    "States.ArrayContains($.big, -1)",
    "States.JsonMerge($.deep, $.deep, false)",
    "States.ArrayGetItem($.big, 99999999999999999999)",
    "States.ArrayLength($.deep)",
    "States.UUID(1)",
    "States.Format('{}{}{}{}{}{}{}{}', $.long, $.long, $.long, $.long, $.long, $.long, $.long)",
)


def family_intrinsic_blowup(rng: random.Random) -> Case:
    expr = rng.choice(_INTRINSIC_BLOWUPS)
    field = rng.choice(["Parameters", "ResultSelector", "ItemSelector"])
    definition: JSON
    if field == "ItemSelector":
        definition = _one(
            {
                "Type": "Map",
                "ItemsPath": "$.small",
                "ItemSelector": {"x.$": expr},
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
            }
        )
    elif field == "ResultSelector":
        definition = _one({"Type": "Task", "Resource": "Ok", "ResultSelector": {"x.$": expr}})
    else:
        definition = _one({"Type": "Pass", "Parameters": {"x.$": expr}})
    # Only the fields the expression reads, each sized to fit AWS's 256 KiB input quota and
    # the runtime's nesting limit (mostly: the largest choices are refused at the start, which
    # is also a path worth running).
    sizes: dict[str, JSON] = {
        "long": lambda: "a" * rng.choice([1000, 100_000, 200_000]),
        "big": lambda: list(range(rng.choice([100, 10_000, 40_000]))),
        "huge": lambda: 10 ** rng.choice([20, 400]),
        "surrogate": lambda: "\ud800x",
        "deep": lambda: nested_list(rng.choice([100, 250, 300])),
        "deeptext": lambda: "[" * 5000 + "]" * 5000,
    }
    data: dict[str, JSON] = {"small": [1, 2]}
    for name, make in sizes.items():
        if f"$.{name}" in expr:
            data[name] = make()
    return Case(family="intrinsic_blowup", seed=0, definition=definition, input=data)


def family_retry(rng: random.Random) -> Case:
    retrier: dict[str, JSON] = {
        "ErrorEquals": [rng.choice(["States.ALL", "Handler.Failed", "States.TaskFailed"])],
        "MaxAttempts": rng.choice([5, 1025, 99_999_999]),
        "IntervalSeconds": rng.choice([1, 60, 99_999_999]),
        "BackoffRate": rng.choice([1.0, 2.0, 10.0, 1e6, 1e300]),
    }
    if rng.random() < 0.5:
        retrier["MaxDelaySeconds"] = rng.choice([1, 3600, 31_622_400])
    if rng.random() < 0.3:
        retrier["JitterStrategy"] = "FULL"
    state: dict[str, JSON] = {"Type": "Task", "Resource": rng.choice(["Fail", "Boom"])}
    state["Retry"] = [retrier]
    top: dict[str, JSON] = {}
    if rng.random() < 0.3:
        top["TimeoutSeconds"] = rng.choice([10, 99_999_999])
    return Case(family="retry", seed=0, definition=_one(state, **top), input={})


def family_timers(rng: random.Random) -> Case:
    hostile = rng.choice(
        [
            1e30,
            1e15,
            2.0**53,
            2**63,
            99_999_999,
            -1,
            0.5,
            "10",
            None,
            "9999-12-31T23:59:59Z",
            "+275760-09-13T00:00:00Z",
            "0001-01-01T00:00:00Z",
            "2030-02-30T00:00:00Z",
            "2030-01-01T00:00:00.123456789Z",
            "2030-01-01T00:00:00+25:00",
        ]
    )
    pick = rng.randrange(5)
    state: dict[str, JSON]
    if pick == 0:
        state = {"Type": "Wait", "SecondsPath": "$.v"}
    elif pick == 1:
        state = {"Type": "Wait", "TimestampPath": "$.v"}
    elif pick == 2:
        state = {
            "Type": "Task",
            "Resource": "Slow",
            rng.choice(["TimeoutSecondsPath", "HeartbeatSecondsPath"]): "$.v",
        }
    elif pick == 3:
        state = {"Type": "Wait", "Seconds": "{% $states.input.v %}"}
        return Case(
            family="timers",
            seed=0,
            definition=_one(state, QueryLanguage="JSONata"),
            input={"v": hostile},
        )
    else:
        state = {
            "Type": "Wait",
            "Timestamp": rng.choice(["9999-12-31T23:59:59Z", "2100-01-01T00:00:00Z"]),
        }
    return Case(family="timers", seed=0, definition=_one(state), input={"v": hostile})


def family_nested(rng: random.Random, seed: int = 0) -> Case:
    name = f"FuzzSelf{seed % 1_000_000_000}"
    arn = machine_arn(name)
    resource = rng.choice(
        [
            "arn:aws:states:::states:startExecution.sync",
            "arn:aws:states:::states:startExecution.sync:2",
            "arn:aws:states:::states:startExecution",
        ]
    )
    state: dict[str, JSON] = {
        "Type": "Task",
        "Resource": resource,
        "Parameters": {"StateMachineArn": arn, "Input.$": "$"},
    }
    if resource.endswith("startExecution") and rng.random() < 0.5:
        # A start that fails (the nesting quota) is caught and the machine starts itself again
        # (until its history quota ends it; with ``.sync`` this would multiply at every level).
        state["Catch"] = [{"ErrorEquals": ["States.ALL"], "Next": "S"}]
    if rng.random() < 0.5:
        state["Parameters"]["Name.$"] = "States.UUID()"
    retry_free = {k: v for k, v in state.items() if k != "Catch"}
    if rng.random() < 0.3:
        # Fan out: a Map of self-starts.
        definition = _one(
            {
                "Type": "Map",
                "ItemsPath": "$.list",
                "ItemProcessor": {
                    "StartAt": "T",
                    "States": {"T": {**retry_free, "End": True}},
                },
            }
        )
        data: JSON = {"list": [1, 2, 3]}
    else:
        definition = _one(state)
        data = {}
    return Case(family="nested", seed=0, definition=definition, input=data, name=name)


def family_loops(rng: random.Random) -> Case:
    pick = rng.randrange(4)
    definition: JSON
    if pick == 0:
        definition = {
            "StartAt": "P",
            "States": {
                "P": {"Type": "Pass", "Next": "C"},
                "C": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.stop", "IsPresent": True, "Next": "E"}],
                    "Default": "P",
                },
                "E": {"Type": "Succeed"},
            },
        }
    elif pick == 1:
        definition = {
            "StartAt": "W",
            "States": {
                "W": {"Type": "Wait", "Seconds": 0, "Next": "C"},
                "C": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "E"}],
                    "Default": "W",
                },
                "E": {"Type": "Succeed"},
            },
        }
    elif pick == 2:
        definition = {
            "QueryLanguage": "JSONata",
            "StartAt": "C",
            "States": {
                "C": {
                    "Type": "Choice",
                    "Choices": [{"Condition": "{% $count($states.input) < 0 %}", "Next": "E"}],
                    "Default": "T",
                },
                "T": {"Type": "Task", "Resource": "Ok", "Next": "C"},
                "E": {"Type": "Succeed"},
            },
        }
    else:
        definition = {
            "StartAt": "M",
            "States": {
                "M": {
                    "Type": "Map",
                    "ItemsPath": "$.list",
                    "ItemProcessor": {
                        "StartAt": "P",
                        "States": {
                            "P": {"Type": "Pass", "Next": "C"},
                            "C": {
                                "Type": "Choice",
                                "Choices": [{"Variable": "$", "IsPresent": False, "Next": "E"}],
                                "Default": "P",
                            },
                            "E": {"Type": "Succeed"},
                        },
                    },
                    "End": True,
                }
            },
        }
    return Case(family="loops", seed=0, definition=definition, input={"list": [1, 2, 3, 4]})


def family_map(rng: random.Random) -> Case:
    state: dict[str, JSON] = {"Type": "Map"}
    map_fields(rng, state, 1, "M")
    state["ItemsPath"] = "$.items"
    items = rng.choice(
        [
            list(range(rng.choice([0, 1, 10, 1000, 40_000]))),
            [hostile_value(rng)],
            {"not": "a list"},
            "string",
        ]
    )
    for key, values in (
        ("MaxConcurrency", [0, 1, 10_000, 2**31]),
        ("ToleratedFailureCount", [0, 1, 10**12, -1]),
        ("ToleratedFailurePercentage", [0, 0.5, 100, 101]),
    ):
        if rng.random() < 0.3:
            state[key] = rng.choice(values)
    if rng.random() < 0.2:
        state["MaxConcurrencyPath"] = "$.mc"
        state.pop("MaxConcurrency", None)
    return Case(
        family="map",
        seed=0,
        definition=_one(state),
        input={"items": items, "mc": rng.choice([1, -1, 1e30, "x"])},
    )


Generator = Callable[[random.Random], Case]

FAMILIES: Final[dict[str, Generator]] = {
    "random": family_random,
    "jsonata": family_jsonata,
    "corpus": family_corpus,
    "malformed": family_malformed,
    "deep": family_deep,
    "huge": family_huge,
    "regex": family_regex,
    "string_matches": family_string_matches,
    "jsonata_blowup": family_jsonata_blowup,
    "intrinsic_blowup": family_intrinsic_blowup,
    "retry": family_retry,
    "timers": family_timers,
    "nested": lambda rng: family_nested(rng),
    "loops": family_loops,
    "map": family_map,
}


def make_case(family: str, seed: int) -> Case:
    """The case ``seed`` of ``family`` (deterministic)."""
    rng = random.Random(f"{family}:{seed}")
    case = family_nested(rng, seed) if family == "nested" else FAMILIES[family](rng)
    name = case.name or f"F{family.replace('_', '')}{seed % 1_000_000_000}"
    return Case(
        family=family,
        seed=seed,
        definition=case.definition,
        input=case.input,
        machine_type=case.machine_type,
        name=name,
        notes=case.notes,
    )
