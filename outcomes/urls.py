"""The pages that join a participant's outcomes: a visit's outcome entry and the weekly SMS
(conversation, consent, the trial's response grid), and participants' pages that show their
outcomes (outcomes.participant_views), at the paths they had in participants' URLconf."""

from django.urls import path

from outcomes import participant_views, views

# Imported for its side effect: participants.urls registers the "id" converter used below.
from participants.urls import IdConverter  # noqa: F401

urlpatterns = [
    path("trials/<str:code>/worklist/", participant_views.worklist, name="worklist"),
    path(
        "trials/<str:code>/participants/<id:pk>/",
        participant_views.participant_detail,
        name="participant_detail",
    ),
    path(
        "trials/<str:code>/participants/<id:pk>/baseline/",
        participant_views.participant_baseline,
        name="participant_baseline",
    ),
    path(
        "trials/<str:code>/participants/<id:pk>/edit/",
        participant_views.participant_edit,
        name="participant_edit",
    ),
    path(
        "trials/<str:code>/participants/<id:pk>/review/",
        participant_views.participant_review,
        name="participant_review",
    ),
    path(
        "trials/<str:code>/visits/<id:pk>/outcomes/",
        views.visit_outcomes,
        name="visit_outcomes",
    ),
    path(
        "trials/<str:code>/participants/<id:pk>/sms/",
        views.participant_sms,
        name="participant_sms",
    ),
    path(
        "trials/<str:code>/participants/<id:pk>/sms/consent/",
        views.participant_sms_consent,
        name="participant_sms_consent",
    ),
    path("trials/<str:code>/sms/", views.sms_grid, name="sms_grid"),
]
