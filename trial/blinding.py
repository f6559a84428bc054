"""Blinding: until a trial manager unblinds a trial (with a reason, audited), statisticians and
everyone but trial managers see its arms only as neutral codes ("A", "B", ...), a random
mapping fixed per trial the first time it is needed. Trial managers may see arm names while
the trial is blinded; every such view or export is recorded in BlindingLog.

Pages and exports that show arms ask `arm_labels(user, trial)` and never print Arm.name or
Arm.description themselves for a user who `is_blinded(user, trial)`.
"""

from __future__ import annotations

import random
import string

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from trial import roles, signals
from trial.models import Arm, BlindingLog, Trial


def blind_codes(trial: Trial) -> dict[int, str]:
    """{arm id: code}, assigning the codes once (a random permutation of A, B, ...)."""
    codes = dict(Arm.objects.filter(trial=trial).values_list("pk", "blind_code"))
    if all(codes.values()):
        return codes
    with transaction.atomic():
        # The trial row lock makes the assignment happen once even if two pages ask at the
        # same moment; the second finds the codes the first wrote.
        Trial.objects.select_for_update().filter(pk=trial.pk).first()
        codes = dict(Arm.objects.filter(trial=trial).values_list("pk", "blind_code"))
        missing = [pk for pk, code in codes.items() if not code]
        if missing:
            # The first letters not yet used (A, B for a two-arm trial), in random order.
            used = set(codes.values())
            unused = [c for c in string.ascii_uppercase if c not in used][: len(missing)]
            random.SystemRandom().shuffle(unused)
            for pk, code in zip(sorted(missing), unused, strict=False):
                # A queryset update: the code is not allocation-shaping configuration, so the
                # arms' freeze after the first randomization does not apply to it.
                Arm.objects.filter(pk=pk).update(blind_code=code)
                codes[pk] = code
            signals.config_changed(trial.pk)  # cached Arm rows must not keep no code
    return codes


def is_blinded(user, trial: Trial) -> bool:
    """Does this user see neutral arm codes for this trial?"""
    return trial.unblinded_at is None and not roles.is_trial_manager(user, trial)


def arm_labels(user, trial: Trial, arms=None) -> dict[int, str]:
    """{arm id: what this user may see}: the name, or the neutral code while blinded."""
    arms = list(arms if arms is not None else Arm.objects.filter(trial=trial))
    if not is_blinded(user, trial):
        return {arm.pk: arm.name for arm in arms}
    codes = blind_codes(trial)
    return {arm.pk: f"Arm {codes[arm.pk]}" for arm in arms}


def record_unblinded_view(*, user, trial: Trial, what: str, exported: bool = False) -> None:
    """Audit a trial manager seeing (or exporting) arm names while the trial is blinded."""
    if trial.unblinded_at is None and roles.is_trial_manager(user, trial):
        BlindingLog.objects.create(
            trial=trial,
            user=user,
            action=BlindingLog.Action.EXPORTED if exported else BlindingLog.Action.VIEWED,
            what=what[:200],
        )


@transaction.atomic
def trial_unblind(*, trial: Trial, by, reason: str) -> Trial:
    """Unblind the trial for everyone who may see its results; needs a trial manager and a
    reason. Irreversible (a blind once broken cannot be restored)."""
    if not roles.is_trial_manager(by, trial):
        raise PermissionDenied("Only a trial manager can unblind a trial.")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Give the reason for unblinding."})
    trial = Trial.objects.select_for_update().get(pk=trial.pk)
    if trial.unblinded_at is not None:
        raise ValidationError(
            f"{trial.code} was already unblinded on {trial.unblinded_at:%d %b %Y}."
        )
    trial.unblinded_at = timezone.now()
    trial.unblinded_by = by
    trial.unblinding_reason = reason
    trial._history_user = by
    trial._change_reason = f"Unblinded: {reason}"
    trial.save(update_fields=["unblinded_at", "unblinded_by", "unblinding_reason"])
    BlindingLog.objects.create(
        trial=trial, user=by, action=BlindingLog.Action.UNBLINDED, reason=reason
    )
    return trial
