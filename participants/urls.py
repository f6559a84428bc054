from django.urls import path

from participants import views

urlpatterns = [
    path("", views.home, name="home"),
    path("trials/<str:code>/", views.trial_home, name="trial_home"),
    path("trials/<str:code>/balance/", views.balance, name="balance"),
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
