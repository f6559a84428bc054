"""Trial configuration, for trial managers, and account administration, for superusers.

A trial manager sees and changes only the trials they manage (trial.admin_scope). After the
first randomization, arms, factors, levels and minimization settings become read-only here
(and the models refuse changes): the stored allocations must stay replayable. The page says
why.
"""

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from trial import blinding, roles, services
from trial.admin_base import (
    CheckedAdmin,
    CheckedHistoryAdmin,
    CheckedInlineFormSet,
    CheckedTabularInline,
)
from trial.admin_forms import FactorForm, PendingInlines, SameTrialPickers, TrialForm
from trial.admin_scope import TrialScopedAdmin
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
    allocation_design_errors,
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


class ArmFormSet(CheckedInlineFormSet):
    """The arms as a set: their allocation ratios against the trial's p as this same
    submission sets it (self.instance carries the trial form's values). Each arm alone
    cannot tell: adding an arm raises the bound on p, a ratio may go up as another goes
    down, and Trial.clean sees only the arms already saved."""

    def clean(self):
        super().clean()
        if any(self.errors) or _locked(self.instance):
            return
        ratios = [
            form.cleaned_data.get("allocation_ratio")
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        errors = allocation_design_errors(self.instance.preferred_probability, ratios)
        if errors:
            raise ValidationError(errors)


class ArmInline(FrozenInline):
    model = Arm
    formset = ArmFormSet
    fields = ("order", "code", "name", "allocation_ratio", "description")


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
class TrialAdmin(TrialScopedAdmin, PendingInlines, CheckedHistoryAdmin):
    trial_lookup = "pk"
    form = TrialForm
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
                    "recruitment_start",
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

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            # Whoever sets up a trial manages it; nobody else does until they give out roles.
            services.membership_add_trial_creator(trial=obj, by=request.user)

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

    def get_fields(self, request, obj=None):
        return ("order", "code", "label", "site") if _is_site_factor(obj) else self.fields

    def get_readonly_fields(self, request, obj=None):
        return ("site",) if _is_site_factor(obj) else ()

    # A site factor's levels are made from the sites (trial.site_levels): shown, never
    # entered or edited here.
    def has_add_permission(self, request, obj=None):
        return not _is_site_factor(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return not _is_site_factor(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not _is_site_factor(obj) and super().has_delete_permission(request, obj)


def _is_site_factor(factor) -> bool:
    return bool(factor and factor.pk and factor.kind == MinimizationFactor.Kind.SITE)


@admin.register(MinimizationFactor)
class MinimizationFactorAdmin(
    TrialScopedAdmin, PendingInlines, SameTrialPickers, CheckedHistoryAdmin
):
    form = FactorForm
    list_display = ("name", "trial", "kind", "variable", "weight", "order")
    list_filter = ("trial",)
    inlines = [FactorLevelInline]
    readonly_fields = ("locked_notice",)
    fields = ("locked_notice", "trial", "code", "name", "kind", "variable", "weight", "order")
    same_trial_fields = ("variable",)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if "kind" in form.base_fields:
            form.base_fields["kind"].help_text = _(
                "A site factor's levels are the trial's sites, made and kept for you (also "
                "for a site opened after randomization started); at most one per trial, "
                "with no baseline variable."
            )
        return form

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


class SuperusersOnly:
    """Only superusers see or change these, whatever permissions an account was given."""

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request, *args):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Membership)
class MembershipAdmin(SuperusersOnly, SameTrialPickers, CheckedHistoryAdmin):
    """Superusers only: trial managers change their trials' teams on each trial's team page,
    which checks what may change and records it."""

    list_display = ("user", "trial", "role_list", "site_list")
    list_filter = ("trial", "trial_manager", "statistician", "coordinator", "clinician")
    filter_horizontal = ("sites",)
    same_trial_fields = ("sites",)

    @admin.display(description=_("Roles"))
    def role_list(self, obj):
        held = roles.roles_of(obj)
        return ", ".join(str(roles.ROLE_LABELS[r]) for r in roles.ALL_ROLES if r in held) or _(
            "None"
        )

    @admin.display(description=_("Sites"))
    def site_list(self, obj):
        return ", ".join(s.code for s in obj.sites.all()) or _("All")

    def get_queryset(self, request):
        return (
            super().get_queryset(request).select_related("user", "trial").prefetch_related("sites")
        )


# Account administration (users, passwords, the staff and superuser flags, groups) is for
# superusers only: an account that could change users could make itself a superuser.
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class AccountAdmin(SuperusersOnly, UserAdmin):
    pass


@admin.register(Group)
class AccountGroupAdmin(SuperusersOnly, GroupAdmin):
    pass


@admin.register(BlindingLog)
class BlindingLogAdmin(TrialScopedAdmin, ReadOnlyAdmin):
    """The blinding audit: rows are written by trial.blinding only."""

    list_display = ("at", "trial", "user", "action", "what", "reason")
    list_filter = ("trial", "action")
    list_select_related = ("trial", "user")
    date_hierarchy = "at"
