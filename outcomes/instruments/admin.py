"""Instruments in the admin: their configuration, edited by trial managers, and the EQ-5D
value sets, shared by every trial and so changed by superusers only (trial.permissions)."""

from django.contrib import admin

from outcomes.instruments.models import EQ5DValueSet, Instrument
from trial.admin_base import CheckedHistoryAdmin
from trial.admin_forms import SameTrialPickers
from trial.admin_scope import TrialScopedAdmin


@admin.register(EQ5DValueSet)
class EQ5DValueSetAdmin(CheckedHistoryAdmin):
    list_display = ("name", "code")


@admin.register(Instrument)
class InstrumentAdmin(TrialScopedAdmin, SameTrialPickers, CheckedHistoryAdmin):
    # baseline_variable is on the form like every model field; listed too, so a manager
    # sees which instrument gives a minimization factor its baseline value.
    list_display = ("name", "trial", "kind", "primary", "baseline_variable", "order", "due_at")
    list_filter = ("trial", "kind")
    filter_horizontal = ("visits",)
    same_trial_fields = ("visits", "baseline_variable")

    @admin.display(description="Due at")
    def due_at(self, obj):
        return ", ".join(v.label for v in obj.visits.all())

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("trial", "baseline_variable")
            .prefetch_related("visits")
        )
