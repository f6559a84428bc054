"""Bases for every ModelAdmin and inline of our apps, so that bad input in the admin's own
machinery is refused with a message and never reaches the database as a server error.

- `CheckedAdmin` / `CheckedHistoryAdmin`: a filter the list cannot apply answers 400 with a
  message and a link to the unfiltered list (trial.bad_input), instead of Django's silent
  redirect to "?e=1" (or its "Database error" page when that fails too). Date drill-down
  values are checked first (`CheckedChangeList`): Django 5.2 turns the chosen year, month or
  day into a half-open datetime range and catches only some of the ways that can fail — a
  year past the C integer range raises OverflowError, year 9999 a ValueError while computing
  the range's end, year 1 an OverflowError when the range's start is converted to UTC.
- `CheckedTabularInline`: its formset refuses negative form counts (`CheckedInlineFormSet`) —
  Django trusts INITIAL_FORMS as sent, and a negative value slices the forms from the end, so
  the existing rows' forms were built as new objects and the last row inserted a second time
  (IntegrityError where a unique constraint exists, a silent duplicate where none does) — and
  its forms check the model's constraints that include the inline's foreign key
  (`InlineModelForm`; Django 5.2 skips them, so a new row repeating another row's code failed
  in the database; fixed in Django 6.0, ticket #35676).

tests/trial/test_admin_input.py checks that every admin of our apps uses these bases.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import router
from django.forms.formsets import ManagementForm
from django.forms.models import BaseInlineFormSet, InlineForeignKeyField
from django.http import Http404
from django.utils.functional import cached_property
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from trial.bad_input import BadInput, IdsChoiceField

# The first and last year whose whole range, in any time zone, is a representable datetime.
FIRST_YEAR, LAST_YEAR = dt.MINYEAR + 1, dt.MAXYEAR - 1
DATE_PARTS = {"year": (FIRST_YEAR, LAST_YEAR), "month": (1, 12), "day": (1, 31)}


class BadDateFilter(IncorrectLookupParameters):
    """A date drill-down value the list cannot filter by; the message is for the user."""


def _bad_date_part(part: str) -> BadDateFilter:
    if part == "year":
        message = gettext(
            "The year in the date filter must be a whole number from %(first)d to %(last)d."
        ) % {"first": FIRST_YEAR, "last": LAST_YEAR}
    elif part == "month":
        message = gettext("The month in the date filter must be a number from 1 to 12.")
    else:
        message = gettext("The day in the date filter is not a day of that month.")
    return BadDateFilter(message)


def check_date_filter(field: str, params: dict[str, list[str]]) -> None:
    """Raise BadDateFilter unless the drill-down's year, month and day (each optional; the
    last value of each, as Django reads them) name a day, month or year the list can
    query."""
    chosen = {}
    for part, (low, high) in DATE_PARTS.items():
        values = params.get(f"{field}__{part}")
        if not values:
            continue
        try:
            number = int(values[-1])
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            raise _bad_date_part(part)
        chosen[part] = number
    if "day" in chosen:
        try:
            # Without a year, 2000: a leap year, so 29 February stays possible.
            dt.date(chosen.get("year", 2000), chosen.get("month", 1), chosen["day"])
        except ValueError as exc:
            raise _bad_date_part("day") from exc


class CheckedChangeList(ChangeList):
    def get_filters(self, request):
        if self.date_hierarchy:
            check_date_filter(self.date_hierarchy, self.get_filters_params())
        return super().get_filters(request)


class InputCheckedAdmin:
    """Mixin for ModelAdmins: a list filter that cannot be applied answers 400."""

    def get_changelist(self, request, **kwargs):
        return CheckedChangeList

    def get_changelist_instance(self, request):
        try:
            return super().get_changelist_instance(request)
        except (IncorrectLookupParameters, OverflowError) as exc:
            # OverflowError: a date past what a datetime can hold once moved into the
            # database's time zone (logout_time__lt=0001-01-01), raised when the list counts.
            if isinstance(exc, BadDateFilter):
                message = str(exc)
            else:
                message = gettext(
                    "A filter in this list's address is not valid. Open the list without it "
                    "and choose the filter again from the list's side panel."
                )
            raise BadInput(message, back_url=request.path) from exc

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs.setdefault("form_class", IdsChoiceField)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class CheckedAdmin(InputCheckedAdmin, admin.ModelAdmin):
    pass


class CheckedHistoryAdmin(InputCheckedAdmin, SimpleHistoryAdmin):
    """django-simple-history's admin, answering 404 for ids that cannot be ids: its history
    views put the address's ids straight into a query, and a value the key field cannot
    hold raised ValueError (500). Django's own views check them the same way
    (ModelAdmin.get_object)."""

    def _checked(self, field, value: str) -> None:
        try:
            field.to_python(unquote(value))
        except (ValidationError, ValueError) as exc:
            raise Http404(gettext("No such record.")) from exc

    def history_view(self, request, object_id, extra_context=None):
        self._checked(self.model._meta.pk, object_id)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        self._checked(self.model._meta.pk, object_id)
        self._checked(self.model.history.model._meta.pk, version_id)
        if request.method == "POST":
            # An earlier version is shown, never restored: restoring would write the record
            # outside its service, with no reason for the change and past the checks (a
            # locked configuration raised a server error). SIMPLE_HISTORY_REVERT_DISABLED
            # hides the button; this refuses the request a crafted form still sends.
            raise PermissionDenied(
                gettext(
                    "Earlier versions are kept for the audit trail and cannot be restored "
                    "here: change the record itself."
                )
            )
        return super().history_form_view(request, object_id, version_id, extra_context)


class CheckedManagementForm(ManagementForm):
    """Django's management form, refusing negative form counts."""

    TOTAL_FORMS = forms.IntegerField(min_value=0, widget=forms.HiddenInput)
    INITIAL_FORMS = forms.IntegerField(min_value=0, widget=forms.HiddenInput)


class CheckedInlineFormSet(BaseInlineFormSet):
    default_error_messages = {
        "missing_management_form": _(
            "The hidden form counts of this table (%(field_names)s) are missing or not valid, "
            "so nothing was saved. Reload the page and enter the changes again."
        ),
    }

    @cached_property
    def management_form(self):
        if not self.is_bound:
            return super().management_form
        # As Django's own, with the checked form; an invalid one leaves both counts at 0,
        # adds the message above to the formset's errors, and so saves nothing.
        form = CheckedManagementForm(
            self.data, auto_id=self.auto_id, prefix=self.prefix, renderer=self.renderer
        )
        form.full_clean()
        return form


class InlineModelForm(forms.ModelForm):
    """A row of an inline: also checks the model's constraints that include the inline's
    foreign key, which Django 5.2 leaves out (it excludes that key from model validation,
    and its unique checks cover unique and unique_together only)."""

    def validate_unique(self):
        super().validate_unique()
        inline_keys = {
            name for name, field in self.fields.items() if isinstance(field, InlineForeignKeyField)
        }
        if not inline_keys:
            return
        instance = self.instance
        exclude = self._get_validation_exclusions()
        using = router.db_for_write(type(instance), instance=instance)
        for model, constraints in instance.get_constraints():
            for constraint in constraints:
                if not inline_keys & set(getattr(constraint, "fields", ())):
                    continue  # validated with the rest of the model already
                try:
                    constraint.validate(model, instance, exclude=exclude, using=using)
                except ValidationError as exc:
                    self._update_errors(exc)


class CheckedTabularInline(admin.TabularInline):
    formset = CheckedInlineFormSet
    form = InlineModelForm
