"""The weekly SMS in the admin: its configuration (schedule, languages, questions and their
texts), edited by trial managers; the SMS outbox, inbox, weeks and answers read-only:
messages are queued, sent and read by services and tasks only; the admin is for seeing what
went out, what came in, what is waiting and what failed."""

from django.contrib import admin
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from outcomes.sms import services
from outcomes.sms.models import (
    InboundMessage,
    OutboundMessage,
    SmsAnswer,
    SmsLanguage,
    SmsQuestion,
    SmsQuestionText,
    SmsSchedule,
    SmsWeek,
)
from trial import roles
from trial.admin import ReadOnlyAdmin
from trial.admin_base import CheckedHistoryAdmin, CheckedTabularInline
from trial.admin_forms import SameTrialInlinePickers, SameTrialPickers
from trial.admin_scope import ScopedChoices, TrialScopedAdmin


@admin.register(OutboundMessage)
class OutboundMessageAdmin(TrialScopedAdmin, ReadOnlyAdmin):
    list_display = (
        "created_at",
        "trial",
        "participant",
        "to",
        "kind",
        "week",
        "status",
        "delivery_status",
        "attempts",
        "sent_at",
    )
    list_filter = ("status", "kind", "delivery_status", "trial")
    list_select_related = ("trial", "participant", "week__participant")
    search_fields = ("to", "participant__number", "gateway_message_id")
    date_hierarchy = "created_at"
    actions = ["requeue"]

    @admin.action(description="Send the selected failed messages again", permissions=["requeue"])
    def requeue(self, request, queryset):
        failed = queryset.filter(status=OutboundMessage.Status.FAILED)
        ids = list(failed.values_list("pk", flat=True))
        n = services.sms_requeue_failed(message_ids=ids, by=request.user)
        self.message_user(request, f"{n} failed message(s) queued again.")

    def has_requeue_permission(self, request) -> bool:
        return roles.is_trial_manager(request.user)


# --- Weekly SMS: configuration ----------------------------------------------------------------


@admin.register(SmsSchedule)
class SmsScheduleAdmin(TrialScopedAdmin, SameTrialPickers, CheckedHistoryAdmin):
    list_display = (
        "trial",
        "enabled",
        "weekday",
        "send_time",
        "weeks",
        "reminder_after_hours",
        "max_clarifications",
        "default_language",
    )
    list_select_related = ("trial",)


class SmsQuestionTextInline(ScopedChoices, SameTrialInlinePickers, CheckedTabularInline):
    model = SmsQuestionText
    extra = 1
    # The language's questions, or the question's languages: the trial's own.
    same_trial_fields = ("question", "language")


@admin.register(SmsLanguage)
class SmsLanguageAdmin(TrialScopedAdmin, SameTrialPickers, CheckedHistoryAdmin):
    list_display = ("name", "code", "trial")
    list_filter = ("trial",)
    list_select_related = ("trial",)
    inlines = [SmsQuestionTextInline]


@admin.register(SmsQuestion)
class SmsQuestionAdmin(TrialScopedAdmin, SameTrialPickers, CheckedHistoryAdmin):
    list_display = ("label", "code", "trial", "order", "min_value", "max_value")
    list_filter = ("trial",)
    list_select_related = ("trial",)
    inlines = [SmsQuestionTextInline]


# --- Weekly SMS: data (read-only) -------------------------------------------------------------


@admin.register(InboundMessage)
class InboundMessageAdmin(TrialScopedAdmin, ReadOnlyAdmin):
    list_display = (
        "received_at",
        "trial",
        "participant",
        "from_number",
        "kind",
        "value",
        "week",
        "body_shown",
    )
    list_filter = ("kind", "trial")
    list_select_related = ("trial", "participant", "week__participant")
    search_fields = ("from_number", "participant__number", "gateway_message_id")
    date_hierarchy = "received_at"

    @admin.display(description=_("Body"))
    def body_shown(self, obj):
        # The list shows the start; the message's own page shows it whole.
        return Truncator(obj.body).chars(80)


@admin.register(SmsWeek)
class SmsWeekAdmin(TrialScopedAdmin, ReadOnlyAdmin):
    list_display = (
        "participant",
        "week",
        "send_date",
        "site",
        "answered",
        "completed_at",
        "reminder_sent_at",
        "clarifications",
    )
    list_filter = ("trial", "site", "send_date")
    list_select_related = ("participant", "site")
    search_fields = ("participant__number",)
    date_hierarchy = "send_date"


@admin.register(SmsAnswer)
class SmsAnswerAdmin(TrialScopedAdmin, ReadOnlyAdmin):
    list_display = ("participant", "week_number", "question", "value", "answered_at")
    list_filter = ("trial", "question")
    list_select_related = ("participant", "week", "question")
    search_fields = ("participant__number",)
    date_hierarchy = "answered_at"

    @admin.display(description="Week", ordering="week__week")
    def week_number(self, obj):
        return obj.week.week
