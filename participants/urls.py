from django.urls import path

from participants import views

urlpatterns = [
    path("", views.home, name="home"),
    path("trials/<str:code>/", views.trial_home, name="trial_home"),
    path("trials/<str:code>/balance/", views.balance, name="balance"),
    path("trials/<str:code>/worklist/", views.worklist, name="worklist"),
    path("trials/<str:code>/follow-up/", views.followup_summary, name="followup_summary"),
    path(
        "trials/<str:code>/visits/<int:pk>/attended/", views.visit_attended, name="visit_attended"
    ),
    path("trials/<str:code>/visits/<int:pk>/missed/", views.visit_missed, name="visit_missed"),
    path("trials/<str:code>/participants/<int:pk>/contact/", views.contact_log, name="contact_log"),
    path(
        "trials/<str:code>/participants/<int:pk>/status/",
        views.participant_status,
        name="participant_status",
    ),
    path("trials/<str:code>/screening/", views.screening_log, name="screening_log"),
    path("trials/<str:code>/screening/new/", views.screening_new, name="screening_new"),
    path("trials/<str:code>/screening/<int:pk>/", views.screening_detail, name="screening_detail"),
    path(
        "trials/<str:code>/screening/<int:pk>/consent/",
        views.screening_consent,
        name="screening_consent",
    ),
    path(
        "trials/<str:code>/participants/<int:pk>/",
        views.participant_detail,
        name="participant_detail",
    ),
    path(
        "trials/<str:code>/participants/<int:pk>/baseline/",
        views.participant_baseline,
        name="participant_baseline",
    ),
    path(
        "trials/<str:code>/participants/<int:pk>/edit/",
        views.participant_edit,
        name="participant_edit",
    ),
    path(
        "trials/<str:code>/participants/<int:pk>/review/",
        views.participant_review,
        name="participant_review",
    ),
    path(
        "trials/<str:code>/participants/<int:pk>/allocation/",
        views.participant_allocation,
        name="participant_allocation",
    ),
]
