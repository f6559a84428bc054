"""The pages that join a participant's outcomes: a visit's outcome entry and the weekly SMS
(conversation, consent, the trial's response grid), at the paths they had in participants'
URLconf."""

from django.urls import path

from outcomes import views

# Imported for its side effect: participants.urls registers the "id" converter used below.
from participants.urls import IdConverter  # noqa: F401

urlpatterns = [
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
