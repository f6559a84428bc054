"""A site factor's levels: one per site of the trial, made by `site_levels_ensure` whenever a
site or a site factor is saved (connected in trial.signals), so nobody enters them and a
participant's level is simply their site's (participants.services.enrollment).

A site opened after randomization started — a common event in a multicentre trial — gets
its level then, although the trial's configuration is otherwise frozen
(FactorLevel._assert_editable allows exactly this): no earlier allocation saw the new level,
so each still replays from the same counts, and the new site's first participant starts
from zero counts there, as a replay from the allocation log does.
"""

from __future__ import annotations

from django.db.models import Max

from trial.models import FactorLevel, MinimizationFactor, Site

# FactorLevel.label is shorter than Site.name.
_LABEL_MAX = FactorLevel._meta.get_field("label").max_length


def site_levels_ensure(*, trial_id: int) -> list[FactorLevel]:
    """Give the trial's site factor (if any) a level for every site that has none, and, while
    nobody is randomized, keep the levels' codes and labels those of their sites. Returns the
    levels created."""
    factor = MinimizationFactor.objects.filter(trial_id=trial_id, kind="site").first()
    if factor is None:
        return []
    levels = {lv.site_id: lv for lv in factor.levels.filter(site__isnull=False)}
    codes = set(factor.levels.values_list("code", flat=True))
    sites = list(Site.objects.filter(trial_id=trial_id).order_by("code", "pk"))
    if not factor.trial.is_locked:
        for site in sites:
            level = levels.get(site.pk)
            if level is None or (level.code, level.label) == (site.code, _label(site)):
                continue
            if site.code != level.code and site.code in codes:
                continue  # two sites swapping codes: keep the old code rather than collide
            codes.discard(level.code)
            level.code, level.label = site.code, _label(site)
            codes.add(level.code)
            level.save(update_fields=["code", "label"])
    order = (factor.levels.aggregate(top=Max("order"))["top"] or 0) + 1
    created = []
    for site in sites:
        if site.pk in levels:
            continue
        # A site's code can repeat a level code only if another site had it before a rename
        # after randomization started (the old level keeps its code for replay).
        code = site.code if site.code not in codes else f"{site.code}-{site.pk}"
        level = FactorLevel(factor=factor, site=site, code=code, label=_label(site), order=order)
        level.save()
        codes.add(code)
        created.append(level)
        order += 1
    return created


def _label(site: Site) -> str:
    return site.name[:_LABEL_MAX]


def on_site_saved(sender, instance: Site, raw: bool = False, **kwargs) -> None:
    if not raw:
        site_levels_ensure(trial_id=instance.trial_id)


def on_factor_saved(sender, instance: MinimizationFactor, raw: bool = False, **kwargs) -> None:
    if not raw and instance.kind == MinimizationFactor.Kind.SITE:
        site_levels_ensure(trial_id=instance.trial_id)
