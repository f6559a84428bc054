"""Start-up and deploy checks the settings module cannot make by itself."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

MISSING_KEY = "SECRET_KEY must be set in the environment when DEBUG is off."


def require_secret_key() -> None:
    """Refuse to serve requests with a key that did not come from the environment."""
    if not settings.DEBUG and not settings.SECRET_KEY_FROM_ENV:
        raise ImproperlyConfigured(MISSING_KEY)


@register(Tags.security, deploy=True)
def secret_key_from_environment(app_configs, **kwargs):
    if not settings.DEBUG and not settings.SECRET_KEY_FROM_ENV:
        return [Error(MISSING_KEY, id="trial.E001")]
    return []


TWILIO_BACKEND = "outcomes.sms.gateways.TwilioBackend"


@register(Tags.security, deploy=True)
def twilio_credentials(app_configs, **kwargs):
    """With the Twilio gateway, sending needs its credentials and a sender, and the webhooks
    need the auth token (without it they refuse every request) and a public https URL."""
    if settings.SMS_BACKEND != TWILIO_BACKEND:
        return []
    token = settings.TWILIO_AUTH_TOKEN
    missing = [
        name
        for name, value in (
            ("TWILIO_ACCOUNT_SID", settings.TWILIO_ACCOUNT_SID),
            ("TWILIO_AUTH_TOKEN", token if token != settings.DEV_WEBHOOK_TOKEN else ""),
            (
                "TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID",
                settings.TWILIO_FROM_NUMBER or settings.TWILIO_MESSAGING_SERVICE_SID,
            ),
        )
        if not value
    ]
    warnings = []
    if missing:
        warnings.append(
            Warning(
                f"SMS_BACKEND is {TWILIO_BACKEND} but these are not set: {'; '.join(missing)}.",
                hint="Set them in the environment; until then no SMS is sent and the SMS "
                "webhooks answer 403.",
                id="trial.W001",
            )
        )
    if not settings.SMS_WEBHOOK_BASE_URL.startswith("https://"):
        warnings.append(
            Warning(
                f"SMS_WEBHOOK_BASE_URL ({settings.SMS_WEBHOOK_BASE_URL}) is not https: "
                "participants' replies would cross the internet unencrypted.",
                hint="Set SMS_WEBHOOK_BASE_URL (or SITE_URL) to the public https URL.",
                id="trial.W002",
            )
        )
    return warnings


@register(Tags.staticfiles, deploy=True)
def static_files_collected(app_configs, **kwargs):
    """With DEBUG off WhiteNoise serves STATIC_ROOT, which only collectstatic fills."""
    from django.contrib.staticfiles.storage import staticfiles_storage

    has_manifest = getattr(staticfiles_storage, "has_manifest", None)
    if settings.DEBUG or has_manifest is None or has_manifest():
        return []
    return [
        Warning(
            f"Static files have not been collected into STATIC_ROOT ({settings.STATIC_ROOT}): "
            "pages would be served without their styles and scripts.",
            hint="Run `manage.py collectstatic --no-input` with the production environment "
            "(again after every upgrade).",
            id="trial.W003",
        )
    ]
