"""RedriveExecution, a verb of ``Runtime``: an unsuccessful execution runs again from the state
it stopped in.

Only STANDARD executions that FAILED, TIMED_OUT or were ABORTED, within 14 days of their end
and at most 1,000 times, may be redriven (AWS's rules); the history goes on with
``ExecutionRedriven`` and the execution runs the definition of its original attempt. In a
cluster the owner of the execution's partition redrives it.

Imports the core's events and fold, the engine's ``Live``, the store's records and the state
machine verbs it stands on.
"""

from __future__ import annotations

from typing import Final

import msgspec

from runtime.api_machines import StateMachineVerbs
from runtime.core.events import HistoryEvent
from runtime.core.evolve import fold
from runtime.engine.scheduler import Live
from runtime.errors import ExecutionDoesNotExist, ExecutionNotRedrivable
from runtime.store.base import Append

__all__ = ["MAX_REDRIVES", "REDRIVABLE", "REDRIVE_WINDOW", "RedriveVerbs"]

#: The statuses a redrive starts from, the time after its end an execution may be redriven
#: (seconds) and how often (AWS's quotas).
REDRIVABLE: Final = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
REDRIVE_WINDOW: Final = 14 * 24 * 3600
MAX_REDRIVES: Final = 1000


class RedriveVerbs(StateMachineVerbs):
    """The redrive verb of ``Runtime``."""

    async def redrive_execution(self, execution_arn: str) -> float:
        """Run an unsuccessful execution again from the state it stopped in (RedriveExecution).

        Only STANDARD executions that FAILED, TIMED_OUT or were ABORTED, within 14 days of
        their end, may be redriven; ``$$.Execution.RedriveCount`` counts the redrives. The
        history goes on with ``ExecutionRedriven``. Returns the redrive date.

        Raises:
            ExecutionDoesNotExist, ExecutionNotRedrivable.
        """
        if self._elsewhere(execution_arn):
            body = {"executionArn": execution_arn}
            done = await self._ask("redrive", body, execution_arn, self.clock.now())
            return float(done["redriveDate"])
        engine = self.engine
        record = await self._log.get_execution(execution_arn)
        if record is None:
            raise ExecutionDoesNotExist(f"Execution Does Not Exist: '{execution_arn}'")
        # AWS: a redriven execution runs the definition of its original attempt.
        machine = await self.machine_of(record)
        now = self.clock.now()
        if record.state_machine_arn in self._quarantined:
            raise self._quarantine_error(record.state_machine_arn)
        if record.status not in REDRIVABLE or engine.holds(execution_arn):
            raise ExecutionNotRedrivable(
                f"Execution is {record.status}; only FAILED, TIMED_OUT or ABORTED executions "
                f"can be redriven: '{execution_arn}'"
            )
        if record.machine_type == "EXPRESS" or machine is None:
            raise ExecutionNotRedrivable(
                f"EXPRESS executions cannot be redriven: '{execution_arn}'"
            )
        if record.stop_date is not None and now - record.stop_date > REDRIVE_WINDOW:
            raise ExecutionNotRedrivable(
                f"Execution ended more than 14 days ago and cannot be redriven: '{execution_arn}'"
            )
        if record.redrive_count >= MAX_REDRIVES:
            raise ExecutionNotRedrivable(f"Execution was redriven {MAX_REDRIVES} times")
        engine.check_open_limit()  # RedriveExecution: ExecutionLimitExceeded, as AWS's
        state = fold(await self._log.read(execution_arn))
        count = record.redrive_count + 1
        event = HistoryEvent(
            id=state.last_event_id + 1,
            type="ExecutionRedriven",
            timestamp=now,
            previous_event_id=state.last_event_id,
            details={"redriveCount": count},
        )
        running = msgspec.structs.replace(
            record,
            status="RUNNING",
            stop_date=None,
            output=None,
            error=None,
            cause=None,
            redrive_count=count,
        )
        await engine.append(
            Append(
                execution_arn=execution_arn,
                expected_seq=state.last_event_id,
                events=(event,),
                record=running,
            ),
            adopt=Live(running, machine, fold([event], state)),
        )
        return now
