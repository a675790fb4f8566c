"""``Phases``, the hot paths' plain-class view of ``Phase``: one attribute per member, each the
member itself (why it is cheaper to read is measured by ``benchmarks peers``, not here)."""

from __future__ import annotations

from runtime.core.state import Phase, Phases


def test_phases_holds_every_member_of_phase_and_nothing_else() -> None:
    constants = {name: value for name, value in vars(Phases).items() if name.isupper()}
    assert constants == {member.name: member for member in Phase}
    for member in Phase:
        assert getattr(Phases, member.name) is member
