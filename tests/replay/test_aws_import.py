"""Histories in the AWS ``get-execution-history`` shape replay here (``from_aws``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runtime import check, load_history, replay
from runtime.core.events import HistoryEvent
from runtime.core.evolve import fold
from runtime.definition.load import load_definition
from runtime.tools.aws_history import from_aws, to_aws_history
from tests.core import test_replay as recorded
from tests.replay.replay_support import threaded_aws_history

HERE = Path(__file__).resolve().parent
AWS_HISTORY = json.loads((HERE / "aws_pass_task_choice.json").read_text(encoding="utf-8"))
AWS_DEFINITION = (HERE / "aws_pass_task_choice.asl.json").read_text(encoding="utf-8")
GOLDEN = HERE.parent / "golden"

#: Our runs whose AWS export cannot be fully re-inferred (see ``runtime.replayer``'s docstring):
#: a retry chosen but never run (the execution timed out first), a retried Map state.
INFERENCE_LIMITS = {
    "execution-timeout-during-retries",
    "test_base_scenarios.TestBaseScenarios.test_map_state_retry_legacy-fa5dde.json",
}


def test_hand_made_aws_history_replays() -> None:
    machine = load_definition(AWS_DEFINITION)
    events = from_aws(AWS_HISTORY, machine)

    state = fold(events)
    steps = list(replay(events))

    assert state.status == "SUCCEEDED"
    assert state.output == {"value": 4, "init": {"n": 3}, "result": {"value": 8}}
    assert [s.state_name for s in steps if s.event.type.endswith("StateEntered")] == [
        "Init",
        "Double",
        "Big?",
        "Big",
    ]
    failed = steps[6]
    assert (failed.event.type, failed.state_name, failed.error) == (
        "LambdaFunctionFailed",
        "Double",
        "Throttled",
    )
    assert failed.retry_delay == pytest.approx(2.018)
    assert steps[7].attempt == 1  # the second schedule is the first retry
    assert steps[2].output == {"value": 4, "init": {"n": 3}}
    assert check(machine, events).compatible


def test_hand_made_aws_history_divergence_on_a_changed_choice() -> None:
    changed = AWS_DEFINITION.replace('"NumericGreaterThan": 5', '"NumericGreaterThan": 10')
    events = from_aws(AWS_HISTORY, load_definition(AWS_DEFINITION))

    result = check(load_definition(changed), events)

    assert result.divergence is not None
    assert result.divergence.event_id == 13
    assert result.divergence.recorded["next"] == "Big"
    assert result.divergence.now is not None
    assert result.divergence.now["next"] == "Small"


def test_aws_timestamps_as_epoch_seconds_and_a_bare_event_list() -> None:
    events = [dict(e) for e in AWS_HISTORY["events"]]
    for event in events:
        event["timestamp"] = 1714557600.5
    parsed = from_aws(events)

    assert parsed[0].timestamp == 1714557600.5
    assert len(parsed) == 16
    assert load_history({"events": events})[0].type == "ExecutionStarted"


def test_not_a_history_is_rejected() -> None:
    with pytest.raises(ValueError, match="not an AWS execution history"):
        from_aws({"executions": []})
    with pytest.raises(ValueError, match="not an AWS history event"):
        from_aws({"events": [{"id": 1}]})


def test_our_sequential_export_replays_from_the_aws_shape() -> None:
    machine_line, execution_line = (GOLDEN / "order-confirmed.jsonl").read_text().splitlines()
    definition = load_definition(json.loads(machine_line)["stateMachine"]["definition"])
    ours = load_history(json.loads(execution_line)["events"])
    exported = json.loads(json.dumps(to_aws_history(ours)))

    events = from_aws(exported, definition)

    assert fold(events).output == fold(ours).output
    assert check(definition, events).compatible
    assert all('"statemill' not in json.dumps(e) for e in exported["events"])


def test_our_runs_exported_as_aws_threads_replay() -> None:
    runs = {name: recorded.hand_made_run(name) for name in recorded.HAND_MADE}
    runs |= {name: recorded.case_run(name) for name in recorded.CASE_FILES}
    failing = set()
    for name, run in runs.items():
        if run is None:
            continue
        events = from_aws(threaded_aws_history(run.events), run.machine)
        live, imported = fold(run.events), fold(events)
        same_end = (live.status, live.output, live.error) == (
            imported.status,
            imported.output,
            imported.error,
        )
        if not same_end or (
            not check(run.machine, events).compatible and not _runs_map_runs(run.events)
        ):
            failing.add(name)

    assert failing <= INFERENCE_LIMITS


def _runs_map_runs(events: list[HistoryEvent]) -> bool:
    """A distributed Map ran its iterations as child executions (logic version 3): their
    outcomes are in the children's histories, not in an AWS export of this one, so the
    import rebuilds the execution's end (asserted above), not a re-decidable log."""
    version = events[0].details.get("statemillLogicVersion", 1)
    return version >= 3 and any(event.type == "MapRunStarted" for event in events)
