"""Start-up and deploy checks the settings module cannot make by itself."""

from django.conf import settings
from django.core.checks import Error, Tags, register
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
