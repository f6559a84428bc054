from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from outcomes import webhooks

admin.site.site_header = "Trial administration"
admin.site.site_title = "Trial administration"

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # The SMS gateway's webhooks: no login, Twilio's signature instead (outcomes.webhooks).
    path("sms/inbound/", webhooks.sms_inbound, name="sms_inbound"),
    path("sms/status/", webhooks.sms_status, name="sms_status"),
    path("", include("participants.urls")),
]
