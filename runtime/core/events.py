"""History events: the append-only log of an execution, shaped as AWS Step Functions logs it.

An execution's state is ``fold(evolve, events)``; nothing else about it is kept. Each event is
a ``HistoryEvent``: AWS's ``type`` (``ExecutionStarted``, ``TaskStateEntered``,
``LambdaFunctionFailed`` ...), ``id`` (dense, from 1), ``previous_event_id``, ``timestamp``
and ``details``, the ``<type>EventDetails`` object exactly as ``GetExecutionHistory``
returns it (camelCase keys).

Why one Struct with a ``details`` mapping rather than one Struct per type: AWS's history already is
a tagged union keyed by ``type``, and keeping its details verbatim makes export to and import from
AWS lossless (a history exported with ``aws stepfunctions get-execution-history`` folds here).

Facts AWS does not log but replay needs live in two extra places, stripped on export:
``frame`` (which Parallel branch or Map iteration the event belongs to; ``""`` is the top level)
and ``details`` keys that start with ``statemill`` (e.g. a recorded retry delay).

Evolution: new fields get defaults; never rename or retype a field. ``ExecutionStarted`` records
``statemillLogicVersion`` in its details, and decisions branch on it, so a history folds and
continues by the logic that wrote it:

- 1: a Map's ItemSelector (or JSONPath ``Parameters``) is evaluated for every item at once;
  MapStateStarted's ``statemillItems`` holds the selected inputs. Also every history without the
  key (imported from AWS).
- 2: it is evaluated as each iteration starts (issue 11: all at once held the event loop and the
  memory for 40,000 selections); ``statemillItems`` holds the items and each MapIterationStarted
  the iteration's input (``statemillInput``). Batched items are still selected at once. A
  distributed Map without MaxConcurrency runs at most 10,000 iterations at once, as AWS does
  (version 1: all of them).
- 3: a distributed Map's iterations run as child executions of its Map Run.
- 4: a Map Run starts no further child while the inputs of its children in flight hold
  ``ExecutionLimits.max_map_run_input_bytes`` or more (each waiting iteration held its input
  in the parent's state: 10,000 of 230 KB).

Imports only the standard library and msgspec.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Any, Final

import msgspec

JSON = Any

#: Version of the decision logic that wrote a history; old histories fold by their own version.
#: 2: a Map's ItemSelector per iteration, a distributed Map's 10,000 in flight (issue 11);
#: 3: a distributed Map's iterations run as child executions of its Map Run (issue 14);
#: 4: a Map Run starts no further child while its children's inputs in flight reach
#: ``ExecutionLimits.max_map_run_input_bytes`` (issue 11).
LOGIC_VERSION: Final = 4

#: Prefix of detail keys that are Statemill's own and not AWS's (stripped by ``to_aws``).
PRIVATE_PREFIX: Final = "statemill"


class HistoryEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One event of an execution's history.

    ``gc=False``: events hold only JSON data, so they can never be part of a reference cycle,
    and millions of them live at once; untracked, they do not make the cycle collector walk
    them (``benchmarks chain``: about half of the objects each execution allocates).
    """

    id: int
    type: str
    timestamp: float
    """Seconds since the Unix epoch (the clock reading the decision was made at)."""
    previous_event_id: int = 0
    details: dict[str, JSON] = msgspec.field(default_factory=dict)
    frame: str = ""
    """The branch/iteration the event belongs to: ``""`` at top level, else a ``/``-joined path
    of ``<entered event id>:<index>`` steps (e.g. ``"4:2"`` is iteration 2 of the Map state
    entered at event 4)."""

    def to_aws(self) -> dict[str, JSON]:
        """This event as ``GetExecutionHistory`` shows it (``<type>EventDetails`` key, ISO time)."""
        out: dict[str, JSON] = {
            "timestamp": _dt.datetime.fromtimestamp(self.timestamp, _dt.UTC).isoformat(),
            "type": self.type,
            "id": self.id,
            "previousEventId": self.previous_event_id,
        }
        public = {k: v for k, v in self.details.items() if not k.startswith(PRIVATE_PREFIX)}
        if public or self.type in _ALWAYS_HAS_DETAILS:
            out[details_key(self.type)] = public
        return out


_ALWAYS_HAS_DETAILS: Final = frozenset({"ExecutionStarted", "ExecutionSucceeded"})

_DETAILS_KEY_OVERRIDES: Final = {
    # AWS names the details of every *StateEntered / *StateExited event after the generic kind.
    "Entered": "stateEnteredEventDetails",
    "Exited": "stateExitedEventDetails",
}


def details_key(event_type: str) -> str:
    """The key AWS uses for an event type's details, e.g. ``taskScheduledEventDetails``."""
    if event_type.endswith("StateEntered"):
        return _DETAILS_KEY_OVERRIDES["Entered"]
    if event_type.endswith("StateExited"):
        return _DETAILS_KEY_OVERRIDES["Exited"]
    return event_type[0].lower() + event_type[1:] + "EventDetails"


#: The MessagePack extension type of an integer MessagePack cannot hold (below -2**63 or above
#: 2**64 - 1), as its decimal text: JSON allows any integer, and a Map's items or an iteration's
#: input are kept as JSON values in the details (issue 11: an item of 1e20 written as an integer
#: made every commit of its execution fail on SQLite, which then hung).
BIG_INT_EXT: Final = 1
_INT_MIN: Final = -(2**63)
_UINT_MAX: Final = 2**64 - 1


def ext_hook(code: int, data: memoryview) -> Any:
    """The decoders' ``ext_hook``: :data:`BIG_INT_EXT` back to its integer."""
    if code == BIG_INT_EXT:
        return int(bytes(data).decode("ascii"))
    raise ValueError(f"unknown MessagePack extension type {code}")


_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(HistoryEvent, ext_hook=ext_hook)
_list_decoder: Final = msgspec.msgpack.Decoder(list[HistoryEvent], ext_hook=ext_hook)


def _with_big_ints(value: JSON) -> JSON:
    """``value`` with every integer MessagePack cannot hold as a :data:`BIG_INT_EXT`."""
    if isinstance(value, int) and not isinstance(value, bool):
        if _INT_MIN <= value <= _UINT_MAX:
            return value
        return msgspec.msgpack.Ext(BIG_INT_EXT, str(value).encode("ascii"))
    if isinstance(value, dict):
        return {key: _with_big_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_big_ints(item) for item in value]
    return value


def _encodable(event: HistoryEvent) -> HistoryEvent:
    return msgspec.structs.replace(event, details=_with_big_ints(event.details))


def encode_event(event: HistoryEvent) -> bytes:
    """MessagePack bytes of one event (the store's row payload)."""
    try:
        return _encoder.encode(event)
    except OverflowError:  # an integer past MessagePack's range (rare: encoded again)
        return _encoder.encode(_encodable(event))


def encode_events(events: Sequence[HistoryEvent]) -> bytes:
    """The :func:`encode_event` bytes of ``events`` back to back, in one encoder call (a
    MessagePack array of them without its header; the reader knows the count)."""
    try:
        data = _encoder.encode(events)
    except OverflowError:
        data = _encoder.encode([_encodable(event) for event in events])
    n = len(events)
    return data[1:] if n < 16 else data[3:] if n < 0x10000 else data[5:]


def decode_event(data: bytes) -> HistoryEvent:
    """Inverse of :func:`encode_event`."""
    return _decoder.decode(data)
