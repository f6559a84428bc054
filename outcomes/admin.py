"""Outcomes in the admin: instrument configuration and EQ-5D value sets (trial managers),
and the SMS outbox, read-only: messages are queued and sent by services and tasks only; the
admin is for seeing what went out, what is waiting and what failed."""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from outcomes.models import EQ5DValueSet, Instrument, OutboundMessage
from participants.admin import ReadOnlyAdmin


@admin.register(OutboundMessage)
class OutboundMessageAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "trial",
        "participant",
        "to",
        "kind",
        "status",
        "attempts",
        "sent_at",
    )
    list_filter = ("status", "kind", "trial")
    list_select_related = ("trial", "participant")
    search_fields = ("to", "participant__number", "gateway_message_id")
    date_hierarchy = "created_at"


@admin.register(EQ5DValueSet)
class EQ5DValueSetAdmin(SimpleHistoryAdmin):
    list_display = ("name", "code")


@admin.register(Instrument)
class InstrumentAdmin(SimpleHistoryAdmin):
    list_display = ("name", "trial", "kind", "primary", "order", "due_at")
    list_filter = ("trial", "kind")
    filter_horizontal = ("visits",)

    @admin.display(description="Due at")
    def due_at(self, obj):
        return ", ".join(v.label for v in obj.visits.all())

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("trial").prefetch_related("visits")
