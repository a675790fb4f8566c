"""The records of recently ended executions: bounded in count and in the text they hold."""

from __future__ import annotations

from runtime.engine.recent import RecentRecords
from runtime.store.base import ExecutionRecord


def record(n: int, size: int) -> ExecutionRecord:
    return ExecutionRecord(
        execution_arn=f"arn:x:{n}",
        state_machine_arn="arn:sm",
        name=str(n),
        status="SUCCEEDED",
        start_date=0.0,
        input="x" * size,
        output="y" * size,
    )


def test_the_oldest_go_first_past_the_text_bound() -> None:
    recent = RecentRecords(capacity=100, max_text=10_000)
    for n in range(10):
        recent.add(record(n, 1_000))  # 2,000 characters each

    kept = [n for n in range(10) if recent.get(f"arn:x:{n}") is not None]
    assert kept == [5, 6, 7, 8, 9]


def test_the_count_bound_and_forget() -> None:
    recent = RecentRecords(capacity=3, max_text=10**9)
    for n in range(5):
        recent.add(record(n, 1))
    recent.forget("arn:x:4")

    assert [n for n in range(5) if recent.get(f"arn:x:{n}") is not None] == [2, 3]


def test_one_record_larger_than_the_bound_is_still_kept() -> None:
    recent = RecentRecords(capacity=10, max_text=100)
    recent.add(record(1, 1_000))

    assert recent.get("arn:x:1") is not None
