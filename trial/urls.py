from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from outcomes.results import admin_views
from outcomes.sms import webhooks
from trial import accounts
from trial import views as trial_views

admin.site.site_header = "Trial administration"
admin.site.site_title = "Trial administration"
# The admin's home page also links the results dashboards (statisticians have no models).
admin.site.index_template = "admin/trialdesk_index.html"

# Malformed requests (trial.bad_input.BadInput and Django's own refusals): 400 with a message.
handler400 = "trial.bad_input.bad_request"

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # A user's own password (trial.accounts): change it, or reset it by e-mail. Our templates
    # have names of their own, so the admin keeps its own password pages.
    path(
        "accounts/password_change/",
        auth_views.PasswordChangeView.as_view(template_name="registration/password_change.html"),
        name="password_change",
    ),
    path(
        "accounts/password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(
            template_name="registration/password_changed.html"
        ),
        name="password_change_done",
    ),
    path(
        "accounts/password_reset/",
        auth_views.PasswordResetView.as_view(
            form_class=accounts.PasswordResetForm,
            template_name="registration/password_reset.html",
            email_template_name="registration/password_reset_email.txt",
            subject_template_name="registration/password_reset_subject.txt",
        ),
        name="password_reset",
    ),
    path(
        "accounts/password_reset/sent/",
        auth_views.PasswordResetDoneView.as_view(
            template_name="registration/password_reset_sent.html"
        ),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        accounts.PasswordResetConfirmView.as_view(
            template_name="registration/password_reset_new.html"
        ),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="registration/password_reset_finished.html"
        ),
        name="password_reset_complete",
    ),
    # The results dashboard: custom views inside the admin site (outcomes.results.admin_views).
    path("admin/results/", admin.site.admin_view(admin_views.results_index), name="results_index"),
    path(
        "admin/results/<str:code>/",
        admin.site.admin_view(admin_views.trial_results),
        name="trial_results",
    ),
    path(
        "admin/results/<str:code>/consort.svg",
        admin.site.admin_view(admin_views.trial_consort),
        {"fmt": "svg"},
        name="trial_consort_svg",
    ),
    path(
        "admin/results/<str:code>/consort.pdf",
        admin.site.admin_view(admin_views.trial_consort),
        {"fmt": "pdf"},
        name="trial_consort_pdf",
    ),
    path(
        "admin/results/<str:code>/unblind/",
        admin.site.admin_view(admin_views.trial_unblind),
        name="trial_unblind",
    ),
    path(
        "admin/results/<str:code>/exports/",
        admin.site.admin_view(admin_views.trial_export_start),
        name="trial_export_start",
    ),
    path(
        "admin/results/<str:code>/exports/<int:job_id>/",
        admin.site.admin_view(admin_views.trial_export_status),
        name="trial_export_status",
    ),
    path(
        "admin/results/<str:code>/exports/<int:job_id>/download/",
        admin.site.admin_view(admin_views.trial_export_download),
        name="trial_export_download",
    ),
    path("admin/", admin.site.urls),
    # The SMS gateway's webhooks: no login, Twilio's signature instead (outcomes.sms.webhooks).
    path("sms/inbound/", webhooks.sms_inbound, name="sms_inbound"),
    path("sms/status/", webhooks.sms_status, name="sms_status"),
    path("", include("participants.urls")),
    path("", include("outcomes.urls")),
    # The trial's team (roles and sites per trial), for its trial managers. After the includes
    # above, which register the "id" converter.
    path("trials/<str:code>/team/", trial_views.team, name="trial_team"),
    path("trials/<str:code>/team/<id:pk>/", trial_views.team_member, name="trial_team_member"),
]
