"""Clinical records in the admin: read-only, with their audit trail (history).

Changes to clinical data go through the services (the clinician's pages), which validate
and audit them; the admin is for trial managers to inspect and audit.
"""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from participants.models import Allocation, FactorLevelCount, Participant, ScreeningRecord


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ScreeningRecord)
class ScreeningRecordAdmin(ReadOnlyAdmin, SimpleHistoryAdmin):
    list_display = ("pk", "trial", "site", "initials", "screened_on", "outcome", "screened_by")
    list_filter = ("trial", "site", "outcome")
    list_select_related = ("trial", "site", "screened_by")
    date_hierarchy = "screened_on"


@admin.register(Participant)
class ParticipantAdmin(ReadOnlyAdmin, SimpleHistoryAdmin):
    list_display = ("__str__", "trial", "site", "status", "consent_date", "randomized_on")
    list_filter = ("trial", "site", "status")
    list_select_related = ("trial", "site")
    search_fields = ("number", "full_name")


@admin.register(Allocation)
class AllocationAdmin(ReadOnlyAdmin):
    list_display = (
        "sequence",
        "trial",
        "participant",
        "arm",
        "method",
        "draw",
        "allocated_by",
        "allocated_at",
    )
    list_filter = ("trial", "arm", "method")
    list_select_related = ("trial", "participant", "arm", "allocated_by")


@admin.register(FactorLevelCount)
class FactorLevelCountAdmin(ReadOnlyAdmin):
    list_display = ("level", "arm", "count")
    list_filter = ("trial",)
    list_select_related = ("level__factor", "arm")
