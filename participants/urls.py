from django.urls import path, register_converter

from participants import views


class IdConverter:
    """A database id: at most 18 digits, so it fits a 64-bit integer on every backend.
    A longer number is simply no match (404) instead of an overflow in the database."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")

urlpatterns = [
    path("", views.home, name="home"),
    path("trials/<str:code>/", views.trial_home, name="trial_home"),
    path("trials/<str:code>/balance/", views.balance, name="balance"),
    path("trials/<str:code>/follow-up/", views.followup_summary, name="followup_summary"),
    path("trials/<str:code>/visits/<id:pk>/attended/", views.visit_attended, name="visit_attended"),
    path("trials/<str:code>/visits/<id:pk>/missed/", views.visit_missed, name="visit_missed"),
    path("trials/<str:code>/participants/<id:pk>/contact/", views.contact_log, name="contact_log"),
    path(
        "trials/<str:code>/participants/<id:pk>/status/",
        views.participant_status,
        name="participant_status",
    ),
    path(
        "trials/<str:code>/participants/<id:pk>/status/reverse/",
        views.status_change_reverse,
        name="status_change_reverse",
    ),
    path("trials/<str:code>/screening/", views.screening_log, name="screening_log"),
    path("trials/<str:code>/screening/new/", views.screening_new, name="screening_new"),
    path("trials/<str:code>/screening/<id:pk>/", views.screening_detail, name="screening_detail"),
    path("trials/<str:code>/screening/<id:pk>/void/", views.screening_void, name="screening_void"),
    path(
        "trials/<str:code>/screening/<id:pk>/consent/",
        views.screening_consent,
        name="screening_consent",
    ),
    path(
        "trials/<str:code>/participants/<id:pk>/allocation/",
        views.participant_allocation,
        name="participant_allocation",
    ),
]
