"""Admin pages scoped to the trials a trial manager manages.

A trial manager holds the admin's model permissions (trial.permissions) because of a role in
SOME trial; these mixins make every list, page, picker and filter show only the objects of
the trials they manage, and refuse the others. Superusers see everything.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist

from trial import roles
from trial.models import FactorLevel, Trial

# How to reach the trial from a related model a form offers in a picker.
PICKER_TRIAL = {Trial: "pk", FactorLevel: "factor__trial"}


def _picker_trial_lookup(model) -> str | None:
    if model in PICKER_TRIAL:
        return PICKER_TRIAL[model]
    try:
        field = model._meta.get_field("trial")
    except FieldDoesNotExist:
        return None
    return "trial" if field.related_model is Trial else None


class ScopedChoices:
    """Pickers (foreign keys, many-to-many) offer only objects of trials the user manages."""

    def _scope(self, request, formfield, model):
        if formfield is None or request.user.is_superuser:
            return formfield
        lookup = _picker_trial_lookup(model)
        if lookup is not None and hasattr(formfield, "queryset"):
            managed = roles.managed_trial_ids(request.user)
            formfield.queryset = formfield.queryset.filter(**{f"{lookup}__in": managed})
        return formfield

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        formfield = super().formfield_for_foreignkey(db_field, request, **kwargs)
        return self._scope(request, formfield, db_field.related_model)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        formfield = super().formfield_for_manytomany(db_field, request, **kwargs)
        return self._scope(request, formfield, db_field.related_model)


class TrialScopedAdmin(ScopedChoices):
    """A ModelAdmin whose objects each belong to one trial, reached by `trial_lookup`."""

    trial_lookup = "trial"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        managed = roles.managed_trial_ids(request.user)
        return queryset.filter(**{f"{self.trial_lookup}__in": managed})

    def _trial_id_of(self, obj) -> int | None:
        """The id of the object's trial, following `trial_lookup` (no query for "trial")."""
        *path, last = self.trial_lookup.split("__")
        for name in path:
            obj = getattr(obj, name)
        return obj.pk if last == "pk" else getattr(obj, f"{last}_id")

    def _in_scope(self, request, obj) -> bool:
        if obj is None or request.user.is_superuser:
            return True
        return self._trial_id_of(obj) in roles.managed_trial_ids(request.user)

    def has_view_permission(self, request, obj=None):
        return self._in_scope(request, obj) and super().has_view_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._in_scope(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._in_scope(request, obj) and super().has_delete_permission(request, obj)

    def get_list_filter(self, request):
        """Filters by a related object (trial, site, arm, ...) list only the values of the
        objects shown: the plain filter lists every trial's, names and all."""
        filters = super().get_list_filter(request)
        if request.user.is_superuser:
            return filters
        scoped = []
        for item in filters:
            if isinstance(item, str) and "__" not in item:
                field = self.model._meta.get_field(item)
                if field.is_relation:
                    item = (item, admin.RelatedOnlyFieldListFilter)
            scoped.append(item)
        return scoped
