"""The Map Run side of the Step Functions API: DescribeMapRun, ListMapRuns and ListExecutions
of a Map Run's child executions (issues 13 and 14), as response bodies of botocore's model.

:mod:`runtime.http.actions` registers the actions; this module holds what is particular to Map
Runs: the ARN check, the bodies (``DescribeMapRunOutput`` with ``itemCounts`` and
``executionCounts`` as ``MapRunItemCounts``/``MapRunExecutionCounts`` name them, dates as epoch
seconds; ``MapRunListItem``), the rule that ListExecutions takes exactly one of
``stateMachineArn`` and ``mapRunArn``, and AWS's ``ResourceNotFound`` for a Map Run that does not
exist (the Runtime's ``ResourceNotFound``, answered here by name).

``UpdateMapRun`` changes a running Map Run's MaxConcurrency and failure tolerance.

Imports the public ``runtime`` API (the Map Run types among it),
``runtime.errors`` and :mod:`runtime.http.protocol` only.
"""

from __future__ import annotations

from typing import Any, Final

from runtime import MapRunCounts, MapRunDescription, MapRunListItem, Runtime
from runtime.errors import ResourceNotFound
from runtime.http.protocol import ApiError, check_arn

__all__ = [
    "BOTH_LISTING_TARGETS",
    "NO_LISTING_TARGET",
    "check_map_run_arn",
    "describe_map_run",
    "listing_target",
    "map_run_exists",
    "map_run_list_item",
]

JSON = Any
Body = dict[str, JSON]

#: ListExecutions without ``stateMachineArn`` or ``mapRunArn``.
NO_LISTING_TARGET: Final = "Must provide a StateMachine ARN or MapRun ARN"
#: ListExecutions with both (the model: "You can specify either a mapRunArn or a
#: stateMachineArn, but not both").
BOTH_LISTING_TARGETS: Final = "Cannot provide both a StateMachine ARN and a MapRun ARN"


def check_map_run_arn(value: str) -> str:
    """``value`` if it is a Map Run ARN (``arn:aws:states:<region>:<account>:mapRun:...``).

    Raises:
        ApiError: ``InvalidArn`` in AWS's words (as for the other resource types).
    """
    check_arn(value, "mapRun")
    return value


def listing_target(body: Body) -> tuple[str | None, str | None]:
    """ListExecutions' ``(stateMachineArn, mapRunArn)``: exactly one of them is given.

    Raises:
        ApiError: ``ValidationException`` when neither or both are given; ``InvalidArn`` for a
            ``mapRunArn`` that is not a Map Run ARN.
    """
    machine, map_run = body.get("stateMachineArn"), body.get("mapRunArn")
    if machine is None and map_run is None:
        raise ApiError("ValidationException", NO_LISTING_TARGET)
    if machine is not None and map_run is not None:
        raise ApiError("ValidationException", BOTH_LISTING_TARGETS)
    if map_run is not None:
        check_map_run_arn(map_run)
    return machine, map_run


async def describe_map_run(runtime: Runtime, map_run_arn: str) -> Body:
    """DescribeMapRun's response for ``map_run_arn``.

    Raises:
        ApiError: ``InvalidArn`` (not a Map Run ARN), ``ResourceNotFound`` (no such Map Run).
    """
    described = await _described(runtime, check_map_run_arn(map_run_arn))
    out: Body = {
        "mapRunArn": described.map_run_arn,
        "executionArn": described.execution_arn,
        "status": described.status,
        "startDate": described.start_date,
    }
    if described.stop_date is not None:
        out["stopDate"] = described.stop_date
    out.update(
        {
            "maxConcurrency": described.max_concurrency,
            "toleratedFailurePercentage": described.tolerated_failure_percentage,
            "toleratedFailureCount": described.tolerated_failure_count,
            "itemCounts": _counts(described.item_counts),
            "executionCounts": _counts(described.execution_counts),
        }
    )
    if described.redrive_count:
        out["redriveCount"] = described.redrive_count
    if described.redrive_date is not None:
        out["redriveDate"] = described.redrive_date
    return out


async def update_map_run(runtime: Runtime, body: Body) -> None:
    """UpdateMapRun: the ARN checked as DescribeMapRun checks it, then the Runtime's verb."""
    map_run_arn = check_map_run_arn(body["mapRunArn"])
    try:
        await runtime.update_map_run(
            map_run_arn,
            max_concurrency=body.get("maxConcurrency"),
            tolerated_failure_count=body.get("toleratedFailureCount"),
            tolerated_failure_percentage=body.get("toleratedFailurePercentage"),
        )
    except ResourceNotFound as missing:
        raise ApiError("ResourceNotFound", str(missing)) from None
    except ValueError as invalid:
        raise ApiError("ValidationException", str(invalid)) from None


async def map_run_exists(runtime: Runtime, map_run_arn: str) -> None:
    """Nothing if the Map Run exists (ListExecutions asks only when a page came back empty).

    Raises:
        ApiError: ``ResourceNotFound``.
    """
    await _described(runtime, map_run_arn)


def map_run_list_item(item: MapRunListItem) -> Body:
    """One ``MapRunListItem`` of ListMapRuns."""
    out: Body = {
        "executionArn": item.execution_arn,
        "mapRunArn": item.map_run_arn,
        "stateMachineArn": item.state_machine_arn,
        "startDate": item.start_date,
    }
    if item.stop_date is not None:
        out["stopDate"] = item.stop_date
    return out


async def _described(runtime: Runtime, map_run_arn: str) -> MapRunDescription:
    try:
        return await runtime.describe_map_run(map_run_arn)
    except ResourceNotFound as exc:
        raise ApiError("ResourceNotFound", str(exc)) from None


def _counts(counts: MapRunCounts) -> Body:
    """``MapRunItemCounts`` / ``MapRunExecutionCounts`` (the same members)."""
    return {
        "pending": counts.pending,
        "running": counts.running,
        "succeeded": counts.succeeded,
        "failed": counts.failed,
        "timedOut": counts.timed_out,
        "aborted": counts.aborted,
        "total": counts.total,
        "resultsWritten": counts.results_written,
        "failuresNotRedrivable": counts.failures_not_redrivable,
        "pendingRedrive": counts.pending_redrive,
    }
