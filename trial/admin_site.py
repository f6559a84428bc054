"""The admin site: open to whoever has work there, not only to accounts marked staff.

Trial managers configure their trials and statisticians read the results there; both are
trial roles (trial.roles), granted by a trial's managers, who never touch an account's staff
flag. So the site lets in active users who are staff (an account setting, superusers' to
give) or who hold one of those roles in some trial; what each may see inside is decided per
model and per trial (trial.permissions, trial.admin_scope, outcomes.results.admin_views).
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from trial import roles
from trial.admin_base import InputCheckedAdmin


class AdminLoginForm(AdminAuthenticationForm):
    """The admin's login form, letting in the users the site lets in."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "invalid_login": _(
            "Please enter the correct username and password of an account with work in the "
            "administration (trial managers and statisticians). Both fields may be "
            "case-sensitive."
        ),
    }

    def confirm_login_allowed(self, user):
        AuthenticationForm.confirm_login_allowed(self, user)
        if not roles.may_use_admin(user):
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


class TrialdeskAdminSite(admin.AdminSite):
    site_header = _("Trial administration")
    site_title = _("Trial administration")

    def register(self, model_or_iterable, admin_class=None, **options):
        """Every ModelAdmin answers bad list filters with 400, not a server error
        (trial.admin_base.InputCheckedAdmin): ours derive from it, and the other apps'
        (accounts, django-axes) get it here."""
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, InputCheckedAdmin):
            admin_class = type(
                admin_class.__name__,
                (InputCheckedAdmin, admin_class),
                {"__module__": admin_class.__module__},
            )
        return super().register(model_or_iterable, admin_class, **options)

    # The home page also links the results dashboards (statisticians have no models).
    index_template = "admin/trialdesk_index.html"
    login_form = AdminLoginForm

    def has_permission(self, request) -> bool:
        return roles.may_use_admin(request.user)
