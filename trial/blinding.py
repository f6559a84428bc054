"""Blinding: until a trial manager unblinds a trial (with a reason, audited), statisticians and
everyone but trial managers see its arms only as neutral codes ("A", "B", ...), a random
mapping assigned when the arms are created or change (`trial_assign_blind_codes`, rules in
trial.blind_codes) and fixed from the first randomization. Trial managers may see arm names
while the trial is blinded; every such view or export is recorded in BlindingLog.

Pages and exports that show arms ask `arm_view(trial, user)` (each arm's label and the order
of the arms for that user) and never print Arm.name or Arm.description themselves for a user
who `is_blinded(user, trial)`. Reading the codes never
writes: an arm found without one (created past the signal, by a bulk insert or raw SQL) makes
blinded pages refuse with `BlindCodesMissing` rather than show anything else.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.translation import gettext

from trial import roles, signals
from trial.blind_codes import decide_blind_codes
from trial.models import Arm, BlindingLog, Trial


class BlindCodesMissing(PermissionDenied):
    """An arm has no neutral code, so its trial's arms cannot be shown blinded (403)."""


def blind_codes(trial: Trial) -> dict[int, str]:
    """{arm id: code}. A read only; raises BlindCodesMissing if an arm has no code."""
    codes = dict(Arm.objects.filter(trial=trial).values_list("pk", "blind_code"))
    if not all(codes.values()):
        raise BlindCodesMissing(
            gettext(
                "The arms of %(trial)s have no neutral codes yet, so they cannot be shown "
                "blinded. A trial manager assigns them by saving the trial in the "
                "administration."
            )
            % {"trial": trial.code}
        )
    return codes


@transaction.atomic
def trial_assign_blind_codes(*, trial_id: int, rng: random.Random | None = None) -> dict[int, str]:
    """Give the trial's arms their neutral codes (rules in trial.blind_codes): a new random
    permutation while nobody is randomized, afterwards codes only for arms without one.
    Returns {arm id: code}."""
    # The trial row lock: the allocation count (which decides whether codes may still be
    # redrawn) cannot change under the decision, since randomization locks the same row;
    # and two arm changes at once decide one after the other, each from all the arms.
    trial = Trial.objects.select_for_update().get(pk=trial_id)
    current = dict(Arm.objects.filter(trial_id=trial_id).values_list("pk", "blind_code"))
    decided = decide_blind_codes(
        list(current), current, redraw=not trial.is_locked, rng=rng or random.SystemRandom()
    )
    changed = {pk: code for pk, code in decided.items() if current[pk] != code}
    if changed:
        # Queryset updates: the code does not shape allocation, so the arms' freeze after
        # the first randomization does not apply. Cleared first, so that two arms swapping
        # codes never meet the (trial, code) unique constraint half-way.
        Arm.objects.filter(pk__in=changed).update(blind_code="")
        for pk, code in changed.items():
            Arm.objects.filter(pk=pk).update(blind_code=code)
        signals.config_changed(trial_id)  # cached Arm rows must not keep the old codes
    return decided


def _arms_changed(sender, instance: Arm, **kwargs) -> None:
    if kwargs.get("raw") or not kwargs.get("created", True):  # fixtures; an arm edited
        return
    trial_assign_blind_codes(trial_id=instance.trial_id)


def connect() -> None:
    """Assign codes whenever an arm is created or deleted (TrialConfig.ready)."""
    post_save.connect(_arms_changed, sender=Arm, dispatch_uid="blind-codes-arm-created")
    post_delete.connect(_arms_changed, sender=Arm, dispatch_uid="blind-codes-arm-deleted")


def is_blinded(user, trial: Trial) -> bool:
    """Does this user see neutral arm codes for this trial?"""
    return trial.unblinded_at is None and not roles.is_trial_manager(user, trial)


@dataclass(frozen=True)
class ArmShown:
    pk: int
    code: str  # the arm's configured code, as the data holds it
    label: str  # its name, or "Arm A" while blinded
    value: str  # as exports write it: its code, or its neutral letter while blinded
    ratio: int  # its allocation ratio


@dataclass(frozen=True)
class ArmView:
    """The trial's arms as one user (or one export) may see them, in the order shown."""

    blinded: bool
    arms: tuple[ArmShown, ...]

    @property
    def labels(self) -> dict[int, str]:
        """{arm id: label}."""
        return {arm.pk: arm.label for arm in self.arms}

    @property
    def label_of_code(self) -> dict[str, str]:
        """{arm code: label}, in the order shown."""
        return {arm.code: arm.label for arm in self.arms}


def arm_view(trial: Trial, user=None, *, blinded: bool | None = None, arms=None) -> ArmView:
    """The label and order of the trial's arms for `user` (or, for a result computed once
    for every blinded or every unblinded reader, as `blinded` says). `arms`: the trial's
    arms if already read, in their configured order.

    Unblinded: the arms' names in the configured order. Blinded: "Arm A", "Arm B", ... in
    code order, because the configured order would tell which code is which arm."""
    if blinded is None:
        blinded = is_blinded(user, trial)
    arms = list(
        arms if arms is not None else Arm.objects.filter(trial=trial).order_by("order", "pk")
    )
    if not blinded:
        return ArmView(
            False, tuple(ArmShown(a.pk, a.code, a.name, a.code, a.allocation_ratio) for a in arms)
        )
    codes = blind_codes(trial)
    arms.sort(key=lambda arm: codes[arm.pk])
    return ArmView(
        True,
        tuple(
            ArmShown(a.pk, a.code, f"Arm {codes[a.pk]}", codes[a.pk], a.allocation_ratio)
            for a in arms
        ),
    )


def arm_labels(user, trial: Trial, arms=None) -> dict[int, str]:
    """{arm id: what this user may see}: the name, or the neutral code while blinded."""
    return arm_view(trial, user, arms=arms).labels


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
