"""What the admin's pages check beyond one field: pickers that list only the trial's own
objects (and refuse another trial's), and the trial page's readiness to recruit, judged on
everything the page is about to save, inlines included (trial.readiness)."""

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.forms.models import model_to_dict
from django.utils.translation import gettext, ngettext

from trial import readiness
from trial.models import (
    Arm,
    ConsentDocument,
    EligibilityCriterion,
    FactorLevel,
    MinimizationFactor,
    Site,
    Trial,
    VisitDefinition,
    refuse_other_trials,
)

# --- Pickers of one trial's objects -----------------------------------------------------------


def scope_pickers(form_class, names, trial) -> None:
    """Make the pickers `names` of `form_class` (a class the admin has just built, so its
    fields are its own) list only `trial`'s objects; without a trial yet (an add page),
    list every trial's, each labelled with its trial's code, for validation to check."""
    for name in names:
        field = form_class.base_fields.get(name)
        if field is None or not hasattr(field, "queryset"):
            continue  # read-only here
        if trial is not None:
            field.queryset = field.queryset.filter(trial=trial)
        else:
            field.queryset = field.queryset.select_related("trial")
            field.label_from_instance = _with_trial_code


def _with_trial_code(obj) -> str:
    return f"{obj.trial.code} · {obj}"


class SameTrialForm(forms.ModelForm):
    """Refuses a choice in `same_trial_fields` (foreign keys or many-to-many) that belongs
    to another trial than the object's, with the message next to the field. Model
    validation covers foreign keys too; many-to-many choices are only seen here (and by
    the database's triggers, trial.same_trial)."""

    same_trial_fields: tuple[str, ...] = ()

    def clean(self):
        data = super().clean()
        trial = data.get("trial") if "trial" in self.fields else None
        trial_id = trial.pk if trial is not None else self.instance.trial_id
        for name in self.same_trial_fields:
            value = data.get(name)
            if value is None:
                continue
            objects = list(value) if hasattr(value, "__iter__") else [value]
            try:
                refuse_other_trials(trial_id, name, objects)
            except ValidationError as exc:
                self.add_error(None, exc)
        return data


class SameTrialPickers:
    """For a ModelAdmin of an object of one trial whose pickers (`same_trial_fields`) choose
    objects of that trial: on the change page the trial is fixed and the pickers list only
    its objects; on the add page they show each option's trial and the form refuses
    another trial's."""

    same_trial_fields: tuple[str, ...] = ()
    form = SameTrialForm

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and "trial" not in fields:
            fields.append("trial")
        return fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.same_trial_fields = self.same_trial_fields
        scope_pickers(form, self.same_trial_fields, obj.trial if obj is not None else None)
        return form


class SameTrialInlinePickers:
    """For an inline whose pickers (`same_trial_fields`) choose objects of the parent's
    trial: listed from that trial on the parent's change page, labelled with their trial
    on its add page (the model's clean() refuses a mismatch)."""

    same_trial_fields: tuple[str, ...] = ()

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        scope_pickers(formset.form, self.same_trial_fields, obj.trial if obj is not None else None)
        return formset


# --- What a page is about to save, for checks across a form and its inlines -----------------


class PendingInlines:
    """For a ModelAdmin whose form checks a rule that spans its inlines: the form finds the
    page's inline formsets on its instance (`_pending_formsets`, by model), so it can see
    what the whole page is about to save. The admin builds the formsets, with the form's
    instance, before it validates the form (ModelAdmin._changeform_view)."""

    def _create_formsets(self, request, obj, change):
        formsets, inline_instances = super()._create_formsets(request, obj, change)
        obj._pending_formsets = {formset.model: formset for formset in formsets}
        return formsets, inline_instances


def saved_rows(formset) -> list[dict] | None:
    """The rows an inline formset leaves once saved, as field values: kept and changed rows
    and new ones, not those deleted. None when it is invalid (nothing is saved then, and its
    own errors say why)."""
    if not formset.is_valid():
        return None
    deleted = {id(form) for form in formset.deleted_forms}
    rows = []
    for form in formset.forms:
        if id(form) in deleted or (form.instance.pk is None and not form.has_changed()):
            continue
        rows.append({**model_to_dict(form.instance), **form.cleaned_data})
    return rows


def _rows(trial, model, pending: dict) -> list[dict] | None:
    """The trial's rows of `model` once the page saves: from its formset on the page, or
    as stored."""
    formset = pending.get(model)
    if formset is not None:
        return saved_rows(formset)
    if trial.pk is None:
        return []
    return list(model.objects.filter(trial=trial).values())


def trial_setup(trial, pending: dict, factors=None) -> readiness.Setup | None:
    """The trial's configuration as readiness counts, as the page would leave it; None
    when an inline on the page is invalid. `factors` replaces the stored (name, number of
    levels) pairs when the page edits factors."""
    rows = {
        model: _rows(trial, model, pending)
        for model in (Site, Arm, EligibilityCriterion, VisitDefinition, ConsentDocument)
    }
    if any(value is None for value in rows.values()):
        return None
    site_factor = ""
    if trial.pk:
        site_factor = (
            MinimizationFactor.objects.filter(trial=trial, kind=MinimizationFactor.Kind.SITE)
            .values_list("name", flat=True)
            .first()
            or ""
        )
    if factors is None:
        factors = (
            tuple(
                MinimizationFactor.objects.filter(trial=trial)
                .annotate(n=Count("levels"))
                .order_by("order", "pk")
                .values_list("name", "n")
            )
            if trial.pk
            else ()
        )
    return readiness.Setup(
        sites=len(rows[Site]),
        arms=len(rows[Arm]),
        follow_up_visits=sum(1 for r in rows[VisitDefinition] if not r["at_randomization"]),
        active_consent_documents=sum(1 for r in rows[ConsentDocument] if r["active"]),
        criteria=len(rows[EligibilityCriterion]),
        factors=tuple(factors),
        site_factor=site_factor,
    )


def describe_missing(missing: readiness.Missing) -> str:
    if missing.what == readiness.SITE:
        return gettext("a site")
    if missing.what == readiness.ARMS:
        return ngettext(
            "at least two arms (%(n)d so far)", "at least two arms (%(n)d so far)", missing.have
        ) % {"n": missing.have}
    if missing.what == readiness.FACTOR_LEVELS:
        return gettext(
            "at least two levels for the minimization factor “%(factor)s” (%(n)d so far)"
        ) % {"factor": missing.subject, "n": missing.have}
    if missing.what == readiness.SITE_FACTOR_SITES:
        return gettext(
            "a second site: the minimization factor “%(factor)s” takes its levels from the "
            "sites (%(n)d so far)"
        ) % {"factor": missing.subject, "n": missing.have}
    if missing.what == readiness.FOLLOW_UP_VISIT:
        return gettext("a follow-up visit in the visit schedule (one not done at randomization)")
    if missing.what == readiness.CONSENT_DOCUMENT:
        return gettext("an active consent document")
    if missing.what == readiness.CRITERIA:
        return gettext("eligibility criteria")
    raise ValueError(f"unknown missing part {missing.what!r}")


def not_ready_error(missing: list[readiness.Missing]) -> ValidationError:
    return ValidationError(
        gettext("A trial can recruit only once it is set up. Missing: %(parts)s.")
        % {"parts": "; ".join(describe_missing(m) for m in missing)},
        code="not_ready",
    )


class TrialForm(forms.ModelForm):
    """The trial page: recruiting needs a complete configuration (trial.readiness), judged
    on what the page as a whole is about to save, so a manager can add the missing parts
    and start recruiting in one save, and cannot remove a part while recruiting."""

    def _post_clean(self):
        # After the instance carries this submission's values (ModelForm._post_clean): the
        # inline formsets validated below read them (the arms check their ratios against the
        # p submitted here), and a formset validates once, so not from clean().
        super()._post_clean()
        if self.cleaned_data.get("status") != Trial.Status.RECRUITING:
            return
        setup = trial_setup(self.instance, getattr(self.instance, "_pending_formsets", {}))
        if setup is None:
            return  # an inline has errors; nothing is saved
        # The bound on p for the arms' ratios is checked by Trial.clean and the arm inline
        # (trial.models.allocation_design_errors), whatever the status.
        missing = readiness.missing_for_recruiting(setup)
        if missing:
            self.add_error("status", not_ready_error(missing))


class FactorForm(SameTrialForm):
    """A minimization factor's page: while its trial recruits, the factor keeps the levels
    recruiting needs (trial.readiness), counted on what the page is about to save."""

    def clean(self):
        data = super().clean()
        trial = data.get("trial") or (self.instance.trial if self.instance.trial_id else None)
        if trial is None or trial.status != Trial.Status.RECRUITING:
            return data
        formset = getattr(self.instance, "_pending_formsets", {}).get(FactorLevel)
        if data.get("kind") == MinimizationFactor.Kind.SITE:
            # A site factor's levels are made from the trial's sites when it is saved
            # (trial.site_levels): it will have one per site.
            levels = list(trial.sites.values("pk"))
        elif formset is not None:
            levels = saved_rows(formset)
        else:
            levels = list(self.instance.levels.values()) if self.instance.pk else []
        if levels is None:
            return data  # the levels have errors of their own; nothing is saved
        name = data.get("name") or self.instance.name
        setup = trial_setup(trial, {}, factors=((name, len(levels)),))
        if setup is None:
            return data
        if any(m.what == readiness.FACTOR_LEVELS for m in readiness.missing_for_recruiting(setup)):
            self.add_error(
                None,
                ValidationError(
                    ngettext(
                        "%(trial)s is recruiting, so each minimization factor needs at least "
                        "two levels (this one would have %(n)d).",
                        "%(trial)s is recruiting, so each minimization factor needs at least "
                        "two levels (this one would have %(n)d).",
                        len(levels),
                    )
                    % {"trial": trial.code, "n": len(levels)},
                    code="not_ready",
                ),
            )
        return data
