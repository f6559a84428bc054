"""Which neutral code ("A", "B", ...) each arm of a trial carries for blinded users: a pure
decision (no Django), applied by trial.blinding.trial_assign_blind_codes.

1. The codes of a trial with K arms are the first K letters.
2. Until anyone is randomized, every change of the arms draws a new uniformly random
   permutation of them over all the arms: no blinded output with data exists yet, and
   assigning codes one arm at a time would give the arm created first the code A.
3. Once anyone is randomized the arms are frozen and an arm's code never changes (blinded
   reports and exports have used it); an arm without one (a trial from before codes were
   assigned on creation) gets one of the letters not yet used, at random.
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping, Sequence

LETTERS = string.ascii_uppercase


def decide_blind_codes(
    arm_ids: Sequence[int], current: Mapping[int, str], *, redraw: bool, rng: random.Random
) -> dict[int, str]:
    """The code of every arm in `arm_ids`; `current` holds the codes stored now ("" for
    none). `redraw`: nobody is randomized yet, so all codes may change."""
    ids = sorted(arm_ids)
    if len(ids) > len(LETTERS):
        raise ValueError(f"at most {len(LETTERS)} arms can have a one-letter code")
    if redraw:
        letters = list(LETTERS[: len(ids)])
        rng.shuffle(letters)
        return dict(zip(ids, letters, strict=True))
    kept = {pk: current[pk] for pk in ids if current.get(pk)}
    missing = [pk for pk in ids if pk not in kept]
    unused = [c for c in LETTERS if c not in set(kept.values())][: len(missing)]
    rng.shuffle(unused)
    return {**kept, **dict(zip(missing, unused, strict=True))}
