"""Checking a ballot and counting a poll, per kind. Pure functions: no database, no accounts.

A ballot's `choices` (what the API's POST /api/v1/polls/<id>/votes takes), by kind, with options
numbered from 0 in the order they were given:
- single, proposal: [i], one option (proposal: 0 agree, 1 abstain, 2 disagree, 3 block, which
  needs a reason);
- multiple: [i, j, ...], one or more different options;
- ranked: every option once, most preferred first;
- score: one whole number from 0 to 5 per option, in the options' order;
- dot: one whole number of dots per option (0 or more), at most the poll's budget in all, at least one.
"""
from __future__ import annotations

from typing import Any, Optional

from collab.errors import Invalid

from rooms.polls.models import BLOCK, MAX_SCORE


def _ints(choices: Any) -> list[int]:
    if not isinstance(choices, list) or not choices:
        raise Invalid("choices must be a non-empty list of whole numbers.", "choices")
    if any(isinstance(c, bool) or not isinstance(c, int) for c in choices):
        raise Invalid("choices must be a list of whole numbers.", "choices")
    return list(choices)


def _indexes(choices: list[int], n: int) -> list[int]:
    bad = [c for c in choices if not 0 <= c < n]
    if bad:
        raise Invalid(f"There is no option {bad[0]}: options are numbered 0 to {n - 1}.", "choices")
    return choices


def check_ballot(kind: str, n: int, choices: Any, *, dots: Optional[int], reason: str) -> list[int]:
    """The ballot as stored, or Invalid saying what is wrong with it."""
    c = _ints(choices)
    if kind in ("single", "proposal"):
        if len(c) != 1:
            raise Invalid("Choose exactly one option.", "choices")
        _indexes(c, n)
        if kind == "proposal" and c[0] == BLOCK and not reason:
            raise Invalid("A block needs a reason: say why you block this proposal.", "reason")
        return c
    if kind == "multiple":
        _indexes(c, n)
        if len(set(c)) != len(c):
            raise Invalid("Each option can be chosen only once.", "choices")
        return sorted(c)
    if kind == "ranked":
        _indexes(c, n)
        if len(set(c)) != len(c):
            raise Invalid("The ranking names an option more than once: rank each option once.", "choices")
        if len(c) != n:
            raise Invalid(f"The ranking leaves out {n - len(c)} option(s): rank every option.", "choices")
        return c
    if len(c) != n:
        raise Invalid(f"Give one number per option ({n} in all).", "choices")
    if kind == "score":
        if any(not 0 <= s <= MAX_SCORE for s in c):
            raise Invalid(f"Scores go from 0 to {MAX_SCORE}.", "choices")
        return c
    if kind == "dot":
        if any(d < 0 for d in c):
            raise Invalid("Dots cannot be negative.", "choices")
        total = sum(c)
        if total > (dots or 0):
            raise Invalid(f"That is {total} dots: you have {dots} to place.", "choices")
        if total == 0:
            raise Invalid("Place at least one dot.", "choices")
        return c
    raise Invalid("Unknown poll kind.", "kind")


def instant_runoff(ballots: list[list[int]], n: int) -> tuple[list[dict[str, Any]], Optional[int]]:
    """Ranked choice by instant runoff: each round counts every ballot for its highest-ranked option
    still in the race; an option with more than half of those counts wins; otherwise the option with
    the fewest is eliminated (a tie for fewest: the one listed last among them goes) and the round
    repeats. Returns the rounds (counts per option still in, the one eliminated) and the winner."""
    remaining = list(range(n))
    rounds: list[dict[str, Any]] = []
    while remaining:
        counts = {i: 0 for i in remaining}
        for ballot in ballots:
            top = next((i for i in ballot if i in counts), None)
            if top is not None:
                counts[top] += 1
        total = sum(counts.values())
        leader = max(remaining, key=lambda i: (counts[i], -i))
        if total == 0 or counts[leader] * 2 > total or len(remaining) == 1:
            winner = leader if total else None
            rounds.append({"counts": [counts[i] if i in counts else None for i in range(n)], "eliminated": None})
            return rounds, winner
        low = min(counts.values())
        out = max(i for i in remaining if counts[i] == low)
        rounds.append({"counts": [counts[i] if i in counts else None for i in range(n)], "eliminated": out})
        remaining.remove(out)
    return rounds, None


def count(kind: str, n: int, ballots: list[list[int]]) -> dict[str, Any]:
    """The tally of a poll: `totals` per option (votes; score: the sum; dot: the dots), plus
    `means` for score and `rounds`/`winner` for ranked choice."""
    out: dict[str, Any] = {"voters": len(ballots)}
    totals = [0] * n
    if kind in ("single", "multiple", "proposal"):
        for b in ballots:
            for i in b:
                totals[i] += 1
    elif kind in ("score", "dot"):
        for b in ballots:
            for i, v in enumerate(b):
                totals[i] += v
        if kind == "score":
            out["means"] = [round(t / len(ballots), 2) if ballots else None for t in totals]
    elif kind == "ranked":
        for b in ballots:
            totals[b[0]] += 1   # first preferences
        out["rounds"], out["winner"] = instant_runoff(ballots, n)
    out["totals"] = totals
    return out
