"""A state machine's legal moves, as data: each status enum (payment, job, refund, webhook delivery, upload)
declares one `Transitions` table next to itself, and the stores build their compare-and-set predicates from
it (db/transitions.py), so the SQL can never allow a move the table does not."""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

S = TypeVar("S", bound=StrEnum)


@dataclass(frozen=True, slots=True)
class Transitions(Generic[S]):
    edges: frozenset[tuple[S, S]]  # (from, to)

    @classmethod
    def of(cls, moves: Mapping[S, Set[S]]) -> Transitions[S]:
        """From each state to the states it may move to."""
        return cls(frozenset((old, new) for old, targets in moves.items() for new in targets))

    def allows(self, old: S, new: S) -> bool:
        return (old, new) in self.edges

    def sources(self, new: S) -> frozenset[S]:
        """The states a row may be in for a compare-and-set move to `new`."""
        return frozenset(old for old, target in self.edges if target is new)
