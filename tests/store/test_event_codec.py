"""Every HistoryEvent round-trips the store codec (one event, and a whole history at once)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from runtime.core.events import HistoryEvent, decode_event, encode_event
from runtime.store.base import decode_events

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)

history_events = st.builds(
    HistoryEvent,
    id=st.integers(min_value=1, max_value=2**40),
    type=st.sampled_from(
        ["ExecutionStarted", "TaskStateEntered", "LambdaFunctionFailed", "MapIterationStarted"]
    )
    | st.text(min_size=1),
    timestamp=st.floats(min_value=0, max_value=4e9, allow_nan=False),
    previous_event_id=st.integers(min_value=0, max_value=2**40),
    details=st.dictionaries(st.text(), json_values, max_size=6),
    frame=st.text(max_size=20),
)


@given(history_events)
def test_event_round_trips(event: HistoryEvent) -> None:
    assert decode_event(encode_event(event)) == event


@given(st.lists(history_events, max_size=40))
def test_history_round_trips_in_one_call(history: list[HistoryEvent]) -> None:
    assert decode_events([encode_event(e) for e in history]) == history


def test_history_decoder_array_headers() -> None:
    """The array header changes form at 16 and 65,536 items."""
    ev = HistoryEvent(id=1, type="PassStateEntered", timestamp=1.0)
    payload = encode_event(ev)
    for n in (0, 15, 16, 65_535, 65_536):
        assert decode_events([payload] * n) == [ev] * n
