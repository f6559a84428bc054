"""Clinical records in the admin: read-only, with their audit trail (history).

Changes to clinical data go through the services (the clinician's pages), which validate
and audit them; the admin is for trial managers to inspect and audit.
"""

from django.contrib import admin

from participants.models import (
    Allocation,
    ContactAttempt,
    FactorLevelCount,
    Participant,
    ScreeningRecord,
    StatusChange,
    Visit,
)
from trial.admin import ReadOnlyAdmin
from trial.admin_base import CheckedHistoryAdmin
from trial.admin_scope import TrialScopedAdmin


@admin.register(ScreeningRecord)
class ScreeningRecordAdmin(TrialScopedAdmin, ReadOnlyAdmin, CheckedHistoryAdmin):
    list_display = (
        "pk",
        "trial",
        "site",
        "initials",
        "screened_on",
        "outcome",
        "screened_by",
        "voided_at",
    )
    list_filter = ("trial", "site", "outcome", ("voided_at", admin.EmptyFieldListFilter))
    list_select_related = ("trial", "site", "screened_by")
    date_hierarchy = "screened_on"


@admin.register(Participant)
class ParticipantAdmin(TrialScopedAdmin, ReadOnlyAdmin, CheckedHistoryAdmin):
    list_display = ("__str__", "trial", "site", "status", "consent_date", "randomized_on")
    list_filter = ("trial", "site", "status")
    list_select_related = ("trial", "site")
    search_fields = ("number", "full_name")


@admin.register(Allocation)
class AllocationAdmin(TrialScopedAdmin, ReadOnlyAdmin):
    list_display = (
        "sequence",
        "trial",
        "participant",
        "arm",
        "slot",
        "method",
        "draw",
        "allocated_by",
        "allocated_at",
    )
    list_filter = ("trial", "arm", "method")
    list_select_related = ("trial", "participant", "arm", "allocated_by")


@admin.register(FactorLevelCount)
class FactorLevelCountAdmin(TrialScopedAdmin, ReadOnlyAdmin):
    list_display = ("level", "arm", "slot", "count")
    list_filter = ("trial",)
    list_select_related = ("level__factor", "arm")


@admin.register(Visit)
class VisitAdmin(TrialScopedAdmin, ReadOnlyAdmin, CheckedHistoryAdmin):
    """Visits and their audit trail (attendance, misses, re-planning with its reason)."""

    list_display = (
        "participant",
        "definition",
        "target_date",
        "window_start",
        "window_end",
        "outcome",
        "attended_on",
        "in_window",
    )
    list_filter = ("trial", "site", "definition", "outcome")
    list_select_related = ("participant", "definition")
    search_fields = ("participant__number",)
    date_hierarchy = "target_date"


@admin.register(StatusChange)
class StatusChangeAdmin(TrialScopedAdmin, ReadOnlyAdmin):
    trial_lookup = "participant__trial"
    list_display = (
        "participant",
        "from_status",
        "to_status",
        "effective_on",
        "followup_allowed",
        "by",
        "at",
    )
    list_filter = ("to_status",)
    list_select_related = ("participant", "by")
    search_fields = ("participant__number",)


@admin.register(ContactAttempt)
class ContactAttemptAdmin(TrialScopedAdmin, ReadOnlyAdmin):
    trial_lookup = "participant__trial"
    list_display = ("participant", "visit", "method", "result", "by", "at")
    list_filter = ("method", "result")
    list_select_related = ("participant", "visit__definition", "by")
    search_fields = ("participant__number",)
