"""Trial configuration, for trial managers.

After the first randomization, arms, factors, levels and minimization settings become
read-only here (and the models refuse changes): the stored allocations must stay
replayable. The page says why.
"""

from django.contrib import admin

from trial import blinding
from trial.admin_base import CheckedAdmin, CheckedHistoryAdmin, CheckedTabularInline
from trial.models import (
    LOCKED_REASON,
    MINIMIZATION_SETTINGS,
    Arm,
    BaselineVariable,
    BlindingLog,
    ConsentDocument,
    EligibilityCriterion,
    FactorLevel,
    Membership,
    MinimizationFactor,
    Site,
    Trial,
    VisitDefinition,
)


class ReadOnlyAdmin(CheckedAdmin):
    """Rows written only by services: the admin shows them and never changes them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _locked(trial) -> bool:
    return bool(trial and trial.pk and trial.is_locked)


class FrozenInline(CheckedTabularInline):
    """An inline that turns read-only once its trial has randomized anyone."""

    extra = 0

    def _trial(self, obj):
        return obj

    def has_add_permission(self, request, obj=None):
        return not _locked(self._trial(obj)) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return not _locked(self._trial(obj)) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not _locked(self._trial(obj)) and super().has_delete_permission(request, obj)


class ArmInline(FrozenInline):
    model = Arm
    fields = ("order", "code", "name", "description")


class SiteInline(CheckedTabularInline):
    model = Site
    extra = 0
    fields = ("code", "name", "randomized_count")
    readonly_fields = ("randomized_count",)

    def has_delete_permission(self, request, obj=None):
        return not _locked(obj) and super().has_delete_permission(request, obj)


class CriterionInline(CheckedTabularInline):
    model = EligibilityCriterion
    extra = 0
    fields = ("kind", "order", "question", "ineligible_answer")


class BaselineVariableInline(CheckedTabularInline):
    model = BaselineVariable
    extra = 0
    fields = (
        "order",
        "code",
        "label",
        "unit",
        "min_value",
        "max_value",
        "eligible_min",
        "eligible_max",
    )


class VisitDefinitionInline(CheckedTabularInline):
    """The visit schedule. Changes apply to participants randomized afterwards; earlier
    participants' open visits move only with `manage.py replan_visits` (audited)."""

    model = VisitDefinition
    extra = 0
    fields = (
        "order",
        "code",
        "label",
        "offset_days",
        "window_before",
        "window_after",
        "at_randomization",
    )


class ConsentDocumentInline(CheckedTabularInline):
    model = ConsentDocument
    extra = 0


@admin.register(Trial)
class TrialAdmin(CheckedHistoryAdmin):
    list_display = (
        "code",
        "name",
        "status",
        "allocation_count",
        "target_sample_size",
        "registry_id",
    )
    readonly_fields = ("allocation_count", "locked_notice")
    inlines = [
        SiteInline,
        ArmInline,
        CriterionInline,
        BaselineVariableInline,
        VisitDefinitionInline,
        ConsentDocumentInline,
    ]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "code",
                    "name",
                    "registry_id",
                    "status",
                    "target_sample_size",
                    "time_zone",
                    "allocation_count",
                )
            },
        ),
        ("Follow-up", {"fields": ("visit_reminder_days",)}),
        (
            "Minimization (Pocock & Simon 1975)",
            {
                "fields": ("locked_notice", *MINIMIZATION_SETTINGS),
                "description": "Factors and their levels are set under Minimization factors.",
            },
        ),
    )

    @admin.display(description="Configuration")
    def locked_notice(self, obj):
        if _locked(obj):
            return LOCKED_REASON
        return "Editable: nobody has been randomized yet."

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if _locked(obj):
            fields += [*MINIMIZATION_SETTINGS, "code"]
        return fields

    def has_delete_permission(self, request, obj=None):
        return not _locked(obj) and super().has_delete_permission(request, obj)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Arms get their codes as they are created (trial.blinding); saving the trial here
        # is also how a manager gives codes to arms that somehow have none.
        if Arm.objects.filter(trial=form.instance, blind_code="").exists():
            blinding.trial_assign_blind_codes(trial_id=form.instance.pk)


class FactorLevelInline(FrozenInline):
    model = FactorLevel
    fields = ("order", "code", "label", "lower", "upper")

    def _trial(self, obj):
        return obj.trial if obj else None


@admin.register(MinimizationFactor)
class MinimizationFactorAdmin(CheckedHistoryAdmin):
    list_display = ("name", "trial", "kind", "variable", "weight", "order")
    list_filter = ("trial",)
    inlines = [FactorLevelInline]
    readonly_fields = ("locked_notice",)
    fields = ("locked_notice", "trial", "code", "name", "kind", "variable", "weight", "order")

    @admin.display(description="Configuration")
    def locked_notice(self, obj):
        return (
            LOCKED_REASON
            if obj and _locked(obj.trial)
            else "Editable until the first randomization."
        )

    def has_change_permission(self, request, obj=None):
        if obj is not None and _locked(obj.trial):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and _locked(obj.trial):
            return False
        return super().has_delete_permission(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "trial":
            kwargs["queryset"] = Trial.objects.filter(allocation_count=0)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Membership)
class MembershipAdmin(CheckedHistoryAdmin):
    list_display = ("user", "trial", "site_list")
    list_filter = ("trial",)
    filter_horizontal = ("sites",)

    @admin.display(description="Sites")
    def site_list(self, obj):
        return ", ".join(s.code for s in obj.sites.all()) or "All"

    def get_queryset(self, request):
        return (
            super().get_queryset(request).select_related("user", "trial").prefetch_related("sites")
        )


@admin.register(BlindingLog)
class BlindingLogAdmin(ReadOnlyAdmin):
    """The blinding audit: rows are written by trial.blinding only."""

    list_display = ("at", "trial", "user", "action", "what", "reason")
    list_filter = ("trial", "action")
    list_select_related = ("trial", "user")
    date_hierarchy = "at"
