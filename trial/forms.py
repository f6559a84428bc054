"""The team page's forms: roles and sites in one trial, for an existing account."""

from __future__ import annotations

from django import forms
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from trial import roles
from trial.bad_input import IdsChoiceField
from trial.models import Membership, Site, Trial


class MembershipForm(forms.Form):
    """Roles and sites of one person in one trial. Nothing about the account itself: the
    staff and superuser flags and passwords are not fields here, so a crafted POST with them
    changes nothing."""

    roles = forms.MultipleChoiceField(
        label=_("Roles in this trial"),
        choices=[(role, roles.ROLE_LABELS[role]) for role in roles.ALL_ROLES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("No role: no access to this trial (the history is kept)."),
    )
    sites = IdsChoiceField(
        label=_("Sites"),
        queryset=Site.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_(
            "None ticked: every site. Clinicians and coordinators see and act on the listed "
            "sites' participants only."
        ),
    )

    def __init__(self, *args, trial: Trial, **kwargs):
        super().__init__(*args, **kwargs)
        self.trial = trial
        self.fields["sites"].queryset = Site.objects.filter(trial=trial).order_by("code")


class AddMemberForm(MembershipForm):
    username = forms.CharField(
        label=_("Username"),
        max_length=150,
        help_text=_("An existing account. Accounts are created by an administrator (a superuser)."),
    )
    field_order = ["username", "roles", "sites"]

    def clean_username(self) -> User:
        username = self.cleaned_data["username"].strip()
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise ValidationError(
                _("There is no active account with the username “%(username)s”."),
                params={"username": username},
            )
        on_team = Membership.objects.filter(user=user, trial=self.trial)
        if any(roles.roles_of(m) for m in on_team):
            raise ValidationError(
                _("%(username)s is already on the team: change their roles in the list."),
                params={"username": username},
            )
        return user

    def clean_roles(self):
        chosen = self.cleaned_data["roles"]
        if not chosen:
            raise ValidationError(_("Choose at least one role."))
        return chosen
