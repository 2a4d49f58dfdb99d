"""Compare-and-set predicates built from the transition tables: every status-changing UPDATE in db/ guards
on `status IN (the states the table lets move to the target)`, never on a hand-written list."""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from sqlalchemy import ColumnElement, false

from studio402.transitions import Transitions

S = TypeVar("S", bound=StrEnum)


def may_move(column: ColumnElement[str], table: Transitions[S], target: S) -> ColumnElement[bool]:
    """True for rows whose `column` may move to `target` (sorted: one compiled form per target)."""
    sources = sorted(state.value for state in table.sources(target))
    return column.in_(sources) if sources else false()
