"""``statemill machines | schedule``: the state machines and the schedules of a store.

``machines`` lists, describes, updates and deletes state machines (the Step Functions verbs, over
:mod:`runtime.tools.store_ops`); ``schedule`` creates, lists, gets and deletes schedules (the
EventBridge Scheduler verbs, over :mod:`runtime.api_schedules`), which a runtime on the store
fires.

Imports only the standard library and the ``cli_*`` plumbing at the top.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, cast

from runtime.cli_support import on_store, parse_input, print_json, read_file, run_async
from runtime.cli_table import EXIT_OK, FORMAT, INPUT, STORE, UsageError, arg, command

if TYPE_CHECKING:
    from runtime import EventStore
    from runtime.api_schedules import ScheduleDescription
    from runtime.store.base import ScheduleStore

__all__ = ["COMMANDS"]

JSON = Any


@command(
    "machines",
    arg("action", choices=("list", "describe", "update", "delete"), help="what to do"),
    arg(
        "state_machine",
        nargs="?",
        metavar="STATE_MACHINE_ARN",
        help="describe, update, delete: which",
    ),
    STORE,
    arg("--definition", metavar="FILE", help="update: the new definition"),
    arg("--type", choices=("STANDARD", "EXPRESS"), help="update: a new machine type"),
    FORMAT,
)
def _machines(args: argparse.Namespace) -> int:
    """list, describe, update or delete the state machines in a store file

    list: a table (name, type, creation time, ARN), or with --format json {"stateMachines":
    [...]}; describe ARN: DescribeStateMachine (with the definition and the executions by
    status); update ARN --definition FILE [--type T]: UpdateStateMachine, the definition validated
    first (a runtime on the file runs new executions on it); delete ARN: DeleteStateMachine,
    a stop request recorded for each running execution (a runtime on the file applies them),
    then the machine deleted (an unknown ARN is not an error).
    """
    from runtime.tools import store_ops

    path = args.store
    if args.action == "list":
        if args.state_machine is not None:
            raise UsageError("machines list takes no STATE_MACHINE_ARN")
        found = store_ops.list_state_machines(path)
        if args.format == "json":
            print_json({"stateMachines": found})
        else:
            print(store_ops.machines_table(found))
        return EXIT_OK
    if args.state_machine is None:
        raise UsageError(f"machines {args.action} needs a STATE_MACHINE_ARN")
    if args.action == "describe":
        print_json(store_ops.describe_state_machine(path, args.state_machine))
        return EXIT_OK
    if args.action == "delete":
        print_json(run_async(store_ops.delete_state_machine, path, args.state_machine))
        return EXIT_OK
    if args.definition is None:
        raise UsageError("machines update needs --definition FILE")
    text = read_file(args.definition, "definition")
    update = store_ops.update_state_machine
    print_json(run_async(update, path, args.state_machine, text, args.type))
    return EXIT_OK


@command(
    "schedule",
    arg("action", choices=("create", "list", "get", "delete"), help="what to do"),
    arg("name", nargs="?", metavar="NAME", help="create, get, delete: the schedule's name"),
    STORE,
    arg("--group", default="default", help="the schedule group (default: default)"),
    arg("--expression", metavar="EXPR", help="create: cron(...), rate(...) or at(...)"),
    arg("--timezone", default="UTC", help="create: ScheduleExpressionTimezone (default: UTC)"),
    arg("--target", metavar="STATE_MACHINE_ARN", help="create: the state machine to start"),
    INPUT,
    arg("--state", choices=("ENABLED", "DISABLED"), default="ENABLED", help="create: State"),
    arg("--start-date", metavar="ISO8601", help="create: StartDate (with its offset)"),
    arg("--end-date", metavar="ISO8601", help="create: EndDate (with its offset)"),
    arg("--flexible-window", type=int, metavar="MINUTES", help="create: FLEXIBLE window"),
    arg("--maximum-event-age", type=int, metavar="SECONDS", help="create: RetryPolicy"),
    arg("--maximum-retry-attempts", type=int, metavar="N", help="create: RetryPolicy"),
    arg("--delete-after-completion", action="store_true", help="create: ActionAfterCompletion"),
    FORMAT,
)
def _schedule(args: argparse.Namespace) -> int:
    """create, list, get or delete the schedules in a store (EventBridge Scheduler's verbs)

    create NAME --expression EXPR --target ARN [--input JSON] [...]: CreateSchedule, prints
    {"ScheduleArn"}; a runtime on the store (statemill worker) fires it (it looks for new
    schedules every second). list: a table (group, name, state, expression, time zone, last
    fire, missed fires), or with --format json {"Schedules": [...]}; get NAME: GetSchedule's
    JSON; delete NAME: DeleteSchedule.
    """
    from datetime import UTC, datetime

    from runtime import api_schedules

    if args.action == "list":
        if args.name is not None:
            raise UsageError("schedule list takes no NAME")
    elif args.name is None:
        raise UsageError(f"schedule {args.action} needs a NAME")

    def date(text: str | None, option: str) -> datetime | None:
        if text is None:
            return None
        try:
            return datetime.fromisoformat(text)
        except ValueError as exc:
            raise UsageError(f"{option} is not an ISO 8601 date: {text}") from exc

    async def use(store: EventStore) -> int:
        if not hasattr(store, "advance_schedule_mark"):
            raise UsageError(f"{type(store).__name__} does not keep schedules")
        schedules = cast("ScheduleStore", store)
        prefix = "arn:aws:scheduler:us-east-1:123456789012:schedule"
        arn = f"{prefix}/{args.group}/{args.name}"
        if args.action == "create":
            if args.expression is None or args.target is None:
                raise UsageError("schedule create needs --expression and --target")
            retry = {
                key: value
                for key, value in (
                    ("MaximumEventAgeInSeconds", args.maximum_event_age),
                    ("MaximumRetryAttempts", args.maximum_retry_attempts),
                )
                if value is not None
            }
            window = None
            if args.flexible_window is not None:
                window = {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": args.flexible_window}
            schedule = api_schedules.build_schedule(
                args.name,
                args.expression,
                {
                    "Arn": args.target,
                    "Input": json.dumps(parse_input(args.input)),
                    "RetryPolicy": retry,
                },
                group_name=args.group,
                schedule_expression_timezone=args.timezone,
                flexible_time_window=window,
                state=args.state,
                start_date=date(args.start_date, "--start-date"),
                end_date=date(args.end_date, "--end-date"),
                action_after_completion="DELETE" if args.delete_after_completion else "NONE",
                creation_date=datetime.now(UTC),
            )
            region, account = "us-east-1", "123456789012"
            made = await api_schedules.put_new_schedule(schedules, schedule, region, account)
            print_json({"ScheduleArn": made})
        elif args.action == "get":
            found = await schedules.get_schedule(arn)
            if found is None:
                raise api_schedules.ResourceNotFoundException(
                    f"Schedule {args.name} does not exist."
                )
            print_json(_schedule_json(api_schedules.describe_record(found)))
        elif args.action == "delete":
            await api_schedules.delete_stored_schedule(schedules, arn, args.name)
        else:
            listed = await api_schedules.list_stored_schedules(schedules, group_name=None)
            if args.format == "json":
                print_json({"Schedules": [_schedule_json(d) for d in listed]})
            else:
                print(_schedules_table(listed))
        return EXIT_OK

    return on_store(args.store, use)


def _schedule_json(described: ScheduleDescription) -> dict[str, JSON]:
    """GetSchedule's JSON, with the fire mark (``LastFire``, ``MissedFires``: ours)."""
    body = described.to_aws()
    last = described.last_fire
    body["LastFire"] = None if last is None else last.isoformat()
    body["MissedFires"] = described.missed_fires
    return body


def _schedules_table(listed: Sequence[ScheduleDescription]) -> str:
    head = ("GROUP", "NAME", "STATE", "EXPRESSION", "TIMEZONE", "LAST FIRE", "MISSED")
    rows = [head]
    for d in listed:
        last = "-" if d.last_fire is None else d.last_fire.isoformat()
        s = d.schedule
        rows.append(
            (
                d.group_name,
                d.name,
                d.state,
                s.schedule_expression,
                s.schedule_expression_timezone,
                last,
                str(d.missed_fires),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


#: This module's commands, in the order ``statemill --help`` lists them.
COMMANDS: Final = (_machines, _schedule)
