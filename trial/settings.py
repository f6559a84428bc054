"""The one settings module. Production differs from development only by environment.

Environment variables:
    DEBUG               "1"/"true" for development (default: off)
    SECRET_KEY          required unless DEBUG; a fixed development key is used only with DEBUG
    ALLOWED_HOSTS       comma-separated (default with DEBUG: localhost, 127.0.0.1)
    DATABASE_URL        e.g. postgres://user:pw@host:5432/db (default: SQLite file db.sqlite3)
    CONN_MAX_AGE        seconds a database connection is kept between requests (default: 60,
                        with DEBUG 0 = one per request)
    CONN_HEALTH_CHECKS  "0" to skip checking a kept connection before reusing it (default: on)
    BEHIND_TLS_PROXY    "1" when a proxy in front terminates TLS, sets X-Forwarded-Proto
                        (overwriting any the client sent) and appends the client's address to
                        X-Forwarded-For: only then is a request taken as https on that
                        header's word, and the login throttle counts failures against the
                        address the proxy appended (default: off)
    LOGIN_FAILURE_LIMIT failed logins before a lockout (default: 5)
    LOGIN_COOLOFF_MINUTES  how long a lockout lasts, and how long failures count (default: 15)
    LOGIN_LOCKOUT_BY    what is locked: "username+ip_address" (default: that username from
                        that address), "ip_address", "username", or a comma-separated list
    CELERY_BROKER_URL   e.g. redis://127.0.0.1:6379/0 (unset: tasks run eagerly in process)
    TIME_ZONE           default Europe/Copenhagen; each trial also has its own zone
    STATIC_ROOT         where `manage.py collectstatic` puts the static files that production
                        serves (default: staticfiles/)
    EXPORT_DIR          where export ZIPs are written (default: var/exports); a directory of
                        its own, made 0700 (the bundles are 0600)
    EXPORT_KEEP_HOURS   how long an export stays downloadable (default: 72)
    EXPORT_STALE_MINUTES  a running export silent this long is marked failed (default: 20)
    TRIALDESK_DEVTOOLS  "1" installs trial.devtools (demo data, benchmarks) without DEBUG, as
                        `make bench` does (default: on with DEBUG and in the tests, else off)
"""

import os
import secrets
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DEBUG")

SECRET_KEY = os.environ.get("SECRET_KEY", "")
# Serving without a SECRET_KEY from the environment is refused (trial/wsgi.py, trial/asgi.py
# and the deploy check in trial/checks.py). Management commands (migrate, makemigrations,
# check) and tests may run without one: development uses a fixed key, anything else a random
# key for this process only, which signs nothing that outlives it.
SECRET_KEY_FROM_ENV = bool(SECRET_KEY)
if not SECRET_KEY:
    if DEBUG or "pytest" in sys.modules:
        SECRET_KEY = "development-only-key-never-use-in-production-0123456789abcdef"
    else:
        SECRET_KEY = secrets.token_urlsafe(50)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "trial.apps.TrialdeskAdminConfig",  # django.contrib.admin with trial.admin_site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "crispy_forms",
    "crispy_bootstrap5",
    "simple_history",
    "trial.apps.TrialConfig",
    "participants.apps.ParticipantsConfig",
    "outcomes.apps.OutcomesConfig",
    "outcomes.instruments.apps.InstrumentsConfig",
    "outcomes.sms.apps.SmsConfig",
    "outcomes.results.apps.ResultsConfig",
]

# The demo data and the benchmark harness (seed_demo, bench_*) are for development only: a
# production deployment should not offer a command that creates users with published
# passwords or bulk-writes synthetic participants into the trial database.
DEVTOOLS = env_bool("TRIALDESK_DEVTOOLS", DEBUG or "pytest" in sys.modules)
if DEVTOOLS:
    INSTALLED_APPS.append("trial.devtools.apps.DevtoolsConfig")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # A NUL character anywhere in a request is refused with 400 before the session, a view or
    # the database sees it (PostgreSQL text cannot hold one); see trial/bad_input.py.
    "trial.bad_input.RejectNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Every page but login needs a logged-in user (Django 5.1+).
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # Records request.user as the author of history rows written during the request.
    "simple_history.middleware.HistoryRequestMiddleware",
]

# Reasons for change (simple-history's change reason) are kept whole: the default column is
# 100 characters, shorter than the reasons the forms accept, and PostgreSQL refused the
# whole save of a longer one.
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True
# History pages show earlier versions; restoring one would write a record outside its service,
# with no reason for the change (trial.admin_base refuses the request too).
SIMPLE_HISTORY_REVERT_DISABLED = True

ROOT_URLCONF = "trial.urls"
WSGI_APPLICATION = "trial.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "trial.context_processors.roles",
                "outcomes.sms.sms_use.context",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# Production keeps each connection for CONN_MAX_AGE seconds instead of opening one per
# request, and checks a kept connection before the first query of each request
# (CONN_HEALTH_CHECKS): after a PostgreSQL restart or failover, or a connection cut by a
# firewall, the request reconnects instead of answering 500 (issue 15 §17).
DATABASES = {
    "default": dj_database_url.parse(
        # An empty DATABASE_URL (as env files often leave it) means the default, as unset does.
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "0" if DEBUG else "60")),
        conn_health_checks=env_bool("CONN_HEALTH_CHECKS", True),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes SQLite's write lock when a transaction starts, so two randomizations
    # cannot both read the counts and then race to write (SQLite has no SELECT FOR UPDATE).
    # The busy timeout makes the second writer wait for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20}
    )
    DATABASES["default"].setdefault("TEST", {})["NAME"] = os.environ.get(
        "SQLITE_TEST_NAME", str(BASE_DIR / ".test-db.sqlite3")
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    # The admin permissions of trial managers, from their roles (per trial; never accounts).
    "trial.permissions.TrialRoleBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Failed-login throttling (django-axes; issue 15 §14) -------------------------------------
# Both login pages (ours and the admin's) authenticate through Django, where axes' backend
# refuses a locked-out username and address before any password is checked, and its
# middleware answers 429 with our page (trial.accounts.locked_out). LOGIN_FAILURE_LIMIT
# failures within LOGIN_COOLOFF_MINUTES lock out for LOGIN_COOLOFF_MINUTES after the last one (a
# further attempt, even with the right password, starts the cool-off again); a successful
# login clears the count, and so does a password reset from the mailed link.
# LOGIN_LOCKOUT_BY: "username+ip_address" (default) locks that username from that address
# only, which stops guessing one account without letting anyone lock a clinician out of the
# trial from elsewhere; "ip_address" or "username" alone, or a comma-separated list (locked
# when any one of them reaches the limit), are the alternatives. Every failure is kept in
# axes' access failure log, which superusers read in the admin (Axes → Access failures).
INSTALLED_APPS.append("axes")
MIDDLEWARE.append("axes.middleware.AxesMiddleware")  # last, as axes requires
# Axes' backend goes first, so a locked-out login is refused before any password is checked.
AUTHENTICATION_BACKENDS.insert(0, "axes.backends.AxesStandaloneBackend")
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [
    item.split("+") if "+" in item else item
    for item in env_list("LOGIN_LOCKOUT_BY", ["username+ip_address"])
]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_LOCKOUT_CALLABLE = "trial.accounts.locked_out"
AXES_CLIENT_IP_CALLABLE = "trial.accounts.client_ip"
AXES_VERBOSE = False  # no banner on every start; failures and lockouts are still logged
# --- end of failed-login throttling ----------------------------------------------------------

# --- Internationalisation and time -----------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TIME_ZONE", "Europe/Copenhagen")
USE_I18N = True
USE_TZ = True

# --- Static files (WhiteNoise; issue 15 §15) ------------------------------------------------
# The application serves its own static files, in production too: WhiteNoise, right after
# SecurityMiddleware (so the HTTPS redirect and HSTS still apply), answers /static/ from
# STATIC_ROOT, which `manage.py collectstatic` fills with content-hashed, gzipped copies
# (trial/staticfiles.py). With DEBUG on it reads the source folders instead, for runserver
# too (runserver_nostatic hands /static/ to it), so development needs no collectstatic.
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "whitenoise.middleware.WhiteNoiseMiddleware",
)
INSTALLED_APPS.insert(
    INSTALLED_APPS.index("django.contrib.staticfiles"), "whitenoise.runserver_nostatic"
)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "trial.staticfiles.StaticFilesStorage"},
}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", "")
# No broker: run tasks eagerly in process, so development needs no Redis. The in-memory
# transport is never used then; naming it only keeps kombu from warning on every call.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_BROKER_URL = CELERY_BROKER_URL or "memory://"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1

# --- Security (production values whenever DEBUG is off) -------------------------------------
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
# Behind a proxy that terminates TLS, the request reaches Django over plain http and only
# the proxy's X-Forwarded-Proto says it was https. Trusted only when BEHIND_TLS_PROXY says
# such a proxy is in front and sets (overwrites) that header: otherwise any client could
# send it and pass for https (Django's docs on SECURE_PROXY_SSL_HEADER).
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY")
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# --- Daily follow-up jobs, e-mail and SMS (issue 3 §4) ---------------------------------------
# Environment variables:
#     EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS,
#     EMAIL_TIMEOUT (seconds), DEFAULT_FROM_EMAIL  SMTP, with EMAIL_BACKEND set to
#                         django.core.mail.backends.smtp.EmailBackend
#     EMAIL_FILE_PATH     directory for django.core.mail.backends.filebased.EmailBackend
#     SMS_BACKEND         dotted path (default outcomes.sms.gateways.ConsoleBackend; see
#                         outcomes/sms/gateways.py)
#     SMS_FILE_PATH       file for outcomes.sms.gateways.FileBackend (one JSON line per message)
#     TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN
#                         for SMS_BACKEND=outcomes.sms.gateways.TwilioBackend; the auth token also
#                         verifies the signature of Twilio's webhook requests
#     TWILIO_FROM_NUMBER  the sending number (E.164), or instead
#     TWILIO_MESSAGING_SERVICE_SID  a Messaging Service (MG...) that picks the sender
#     SMS_WEBHOOK_BASE_URL  the public URL of the site root as the gateway reaches it (default
#                         SITE_URL); webhook signatures are checked against it plus
#                         /sms/inbound/ or /sms/status/, and delivery reports are asked for
#                         at it. Behind a proxy it is not the URL the application sees.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
# Without a timeout a hung SMTP server would hold a worker forever; the digest task retries.
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "30"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "trialdesk@localhost")
# Where the site is served, for links in e-mails (which have no request to build them from).
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# Defaults outside the repository, so trying the file backends leaves no stray files there.
EMAIL_FILE_PATH = os.environ.get(
    "EMAIL_FILE_PATH", str(Path(tempfile.gettempdir()) / "trialdesk-email")
)
SMS_BACKEND = os.environ.get("SMS_BACKEND", "outcomes.sms.gateways.ConsoleBackend")
# The gateways' module path before outcomes became nested apps, still honoured so that an
# installation configured with it sends SMS after the upgrade as it did before.
SMS_BACKEND = {
    f"outcomes.sms.{name}": f"outcomes.sms.gateways.{name}"
    for name in ("ConsoleBackend", "FileBackend", "TwilioBackend")
}.get(SMS_BACKEND, SMS_BACKEND)
SMS_FILE_PATH = os.environ.get(
    "SMS_FILE_PATH", str(Path(tempfile.gettempdir()) / "trialdesk-sms.jsonl")
)
TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "")
TWILIO_FROM_NUMBER = os.environ.get("TWILIO_FROM_NUMBER", "")
TWILIO_MESSAGING_SERVICE_SID = os.environ.get("TWILIO_MESSAGING_SERVICE_SID", "")
# Without a token the webhooks answer 403 to everything (and log why). In development a
# fixed token lets `manage.py sms_simulate_reply` post a signed reply to `make run`; it is
# no Twilio credential (outcomes.sms.gateways.TwilioBackend refuses it).
DEV_WEBHOOK_TOKEN = "dev-webhook-token"
TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "") or (DEV_WEBHOOK_TOKEN if DEBUG else "")
SMS_WEBHOOK_BASE_URL = os.environ.get("SMS_WEBHOOK_BASE_URL", SITE_URL).rstrip("/")

# Run by `celery -A trial worker -B` (make worker), at these times in CELERY_TIMEZONE. Each
# job works out "today" in each trial's own time zone, and both are idempotent per day, so
# a second beat or a manual `manage.py run_daily_jobs` sends nothing twice.
CELERY_BEAT_SCHEDULE = {
    "coordinator-digests": {
        "task": "participants.tasks.send_coordinator_digests",
        "schedule": crontab(hour=7, minute=0),
    },
    "visit-reminders": {
        "task": "participants.tasks.send_visit_reminders",
        "schedule": crontab(hour=9, minute=0),
    },
    # SMS whose send task was lost (broker down at queueing time) are queued again.
    "sms-send-stale": {
        "task": "outcomes.tasks.sms_send_stale",
        "schedule": crontab(minute="*/15"),
    },
    # Weekly SMS tracking: each trial's send time is checked every quarter of an hour.
    "sms-weekly": {"task": "outcomes.tasks.sms_weekly", "schedule": crontab(minute="*/15")},
    "sms-reminders": {
        "task": "outcomes.tasks.sms_reminders",
        "schedule": crontab(minute="7-59/15"),
    },
    # Statistician's export bundles past their keep time are deleted.
    "exports-cleanup": {"task": "outcomes.tasks.export_cleanup", "schedule": crontab(minute=23)},
    # Exports whose worker died are marked failed; exports never picked up are re-sent.
    "exports-sweep": {"task": "outcomes.tasks.export_sweep", "schedule": crontab(minute="*/10")},
}
# The statistician's export bundles (outcomes.results.export): where the ZIPs are written and
# how long each is kept for download before the hourly cleanup deletes it.
EXPORT_DIR = Path(os.environ.get("EXPORT_DIR", BASE_DIR / "var" / "exports"))
EXPORT_KEEP_HOURS = int(os.environ.get("EXPORT_KEEP_HOURS", "72"))
EXPORT_STALE_MINUTES = int(os.environ.get("EXPORT_STALE_MINUTES", "20"))
# --- end of daily follow-up jobs ------------------------------------------------------------
