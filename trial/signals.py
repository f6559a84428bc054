"""Keeps Trial.config_version moving: any save or delete of configuration that randomization
reads gives it a new random value, so caches keyed on it (participants.selectors.trial_config)
never serve an old configuration. Also keeps a site factor's levels those of the trial's
sites (trial.site_levels). Connected in TrialConfig.ready()."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save

from trial import site_levels
from trial.models import (
    Arm,
    BaselineVariable,
    FactorLevel,
    MinimizationFactor,
    Site,
    Trial,
    VisitDefinition,
    new_config_version,
)

CONFIGURATION = (Arm, MinimizationFactor, FactorLevel, BaselineVariable, VisitDefinition)


def _trial_id(instance) -> int | None:
    if isinstance(instance, FactorLevel):
        return (
            MinimizationFactor.objects.filter(pk=instance.factor_id)
            .values_list("trial_id", flat=True)
            .first()
        )
    return instance.trial_id


def config_changed(trial_id: int) -> None:
    """Say the trial's configuration changed. Signals cover save() and delete(); code that
    changes configuration rows with a queryset update() must call this itself."""
    Trial.objects.filter(pk=trial_id).update(config_version=new_config_version())


def bump_config_version(sender, instance, **kwargs) -> None:
    if kwargs.get("raw"):  # loading fixtures: nothing is cached yet
        return
    trial_id = _trial_id(instance)
    if trial_id is not None:
        config_changed(trial_id)


def connect() -> None:
    # A site factor's levels follow the sites (trial.site_levels).
    post_save.connect(site_levels.on_site_saved, sender=Site, dispatch_uid="site-levels-site")
    post_save.connect(
        site_levels.on_factor_saved, sender=MinimizationFactor, dispatch_uid="site-levels-factor"
    )
    for model in CONFIGURATION:
        uid = f"config-version-{model.__name__}"
        post_save.connect(bump_config_version, sender=model, dispatch_uid=f"{uid}-save")
        post_delete.connect(bump_config_version, sender=model, dispatch_uid=f"{uid}-delete")
