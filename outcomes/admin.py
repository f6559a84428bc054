"""The SMS outbox in the admin: read-only. Messages are queued and sent by services and
tasks only; the admin is for seeing what went out, what is waiting and what failed."""

from django.contrib import admin

from outcomes.models import OutboundMessage


@admin.register(OutboundMessage)
class OutboundMessageAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
