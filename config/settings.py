"""Tribunal settings: everything that varies between deployments comes from the environment."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    env_bool,
    env_float,
    env_int,
    env_list,
    env_proxy_header,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("TRIBUNAL_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)


def _local_secret_key() -> str:
    """A per-installation key for the single-machine default, kept in var/ with mode 0600.

    Several web nodes must share one key: set SECRET_KEY for them.
    """
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = env_str("SECRET_KEY", "") or _local_secret_key()
if len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "template_partials",
    "django_htmx",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "csp",
    "corpus",
    "annotation",
    "judges",
    "analysis",
    # The project level: commands that span the apps (seed_demo, run_judge).
    "config",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "config.roles.roles",
            ],
        },
    },
]

DATABASE_URL = env_url(
    "DATABASE_URL",
    f"sqlite:///{VAR_DIR / 'tribunal.sqlite3'}",
    schemes=("sqlite", "postgres", "postgresql"),
)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL or "", conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the demo's in-process tasks read while a request writes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# WhiteNoise serves static files straight from static/ (through the finders) as well as from
# STATIC_ROOT, so the demo and a single-machine install work without collectstatic and never
# serve a stale copy; a deployment behind a CDN still runs collectstatic.
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = VAR_DIR / "media"
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 50 * 1024 * 1024

# Imports read untrusted files: what one file may decompress to, the size of one row (a JSON
# line, a CSV record), and of a JSON array (parsed whole), in MiB. Past a limit the file is
# refused with a message naming the setting; memory stays near one row (docs/import-formats.md).
TRIBUNAL_IMPORT_MAX_FILE_MB = env_int("TRIBUNAL_IMPORT_MAX_FILE_MB", 512, minimum=1)
TRIBUNAL_IMPORT_MAX_ROW_MB = env_int("TRIBUNAL_IMPORT_MAX_ROW_MB", 16, minimum=1)
TRIBUNAL_IMPORT_MAX_JSON_ARRAY_MB = env_int("TRIBUNAL_IMPORT_MAX_JSON_ARRAY_MB", 64, minimum=1)

# Security headers. Model outputs are untrusted text: nothing inline runs, nothing loads from
# another origin.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
# Behind TLS (README, "Behind TLS"). HSTS tells browsers to use HTTPS only: sent on HTTPS
# responses only, so a plain-HTTP demo is not affected; one year unless DEBUG. A reverse proxy
# that ends TLS must say so in a header it sets itself (and strips from clients), named by
# SECURE_PROXY_SSL_HEADER, e.g. X-Forwarded-Proto; never set it without such a proxy, or any
# client could claim HTTPS.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_PROXY_SSL_HEADER = env_proxy_header("SECURE_PROXY_SSL_HEADER")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Celery. Without a broker, tasks run in-process after the surrounding transaction commits
# (see config/tasks.py), so the embedded default needs nothing else running.
CELERY_BROKER_URL = env_url(
    "CELERY_BROKER_URL", None, schemes=("redis", "rediss", "amqp", "memory")
)
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
# What happens when a worker dies mid-task (killed, out of memory, the machine restarted):
# - acks_late: a task's message is acknowledged when the task ends, not when it starts, so a
#   task cut short is delivered again instead of being lost;
# - reject_on_worker_lost: when a pool process dies under a task, its message goes back to
#   the queue at once (the default acknowledges it as failed, losing the job);
# - prefetch 1: a worker holds one message beyond the one it runs, so a dead worker strands
#   at most that one, and long jobs do not queue behind each other on one worker;
# - visibility_timeout (Redis): a message taken but not acknowledged for this long is given
#   to another worker; kombu's default is one hour. Every task is idempotent and job tasks
#   hold a lease on their row (config/leases.py), so an early second delivery of a task that
#   is still running returns at once; restore sweeps run every 15 s.
# Jobs whose worker died are also found by their lease and finished by the sweeps the
# workers run (config.leases), without waiting for the broker.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Publishing from a request (config/tasks.py) never waits for a broker that is away: one
# connection attempt with a short timeout, no retry; the task waits in the process's outbox
# and is sent again every TRIBUNAL_TASKS_RETRY_SECONDS (and by the workers' sweeps).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 300, minimum=10),
    "unacked_restore_interval": 15,
    "unacked_restore_throttle": 1,
    "max_retries": 0,  # kombu's default channel: fail at the first refused connection
    "socket_connect_timeout": env_float("CELERY_BROKER_CONNECT_TIMEOUT", 0.5, minimum=0.01),
}
CELERY_BROKER_CONNECTION_TIMEOUT = env_float("CELERY_BROKER_CONNECT_TIMEOUT", 0.5, minimum=0.01)
CELERY_TASK_PUBLISH_RETRY = False
TRIBUNAL_TASKS_RETRY_SECONDS = env_float("TRIBUNAL_TASKS_RETRY_SECONDS", 5, minimum=0.1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 6 * 3600, minimum=60)
# Background jobs (imports, judge runs, classification runs) hold a lease on their row,
# renewed every quarter of it; a running job silent for longer lost its worker and is
# resumed (or, for an import, failed) by the sweeps, up to this many starts.
TRIBUNAL_JOB_LEASE_SECONDS = env_int("TRIBUNAL_JOB_LEASE_SECONDS", 60, minimum=2)
TRIBUNAL_JOB_MAX_ATTEMPTS = env_int("TRIBUNAL_JOB_MAX_ATTEMPTS", 3, minimum=1)
REDIS_URL = env_url("REDIS_URL", None, schemes=("redis", "rediss"))

# The cache holds the pending flags that coalesce a burst of labels into one recompute
# (config/tasks.py), so it must be shared by web nodes and workers: CACHE_URL, else the
# broker's Redis when there is one, else this process's memory (the embedded default).
CACHE_URL = env_url("CACHE_URL", None, schemes=("redis", "rediss"))


def cache_location(cache_url: str | None, broker_url: str | None) -> str | None:
    """The Redis the cache uses: `CACHE_URL`, else a Redis broker's URL, else none."""
    if cache_url:
        return cache_url
    if broker_url and broker_url.startswith(("redis://", "rediss://")):
        return broker_url
    return None


_CACHE_LOCATION = cache_location(CACHE_URL, CELERY_BROKER_URL)
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _CACHE_LOCATION,
            # A Redis that is away costs a request a refused connection, not a wait.
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 2},
        }
        if _CACHE_LOCATION
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
# Report snapshots: wait this long after a label before recomputing (a burst becomes one
# recompute), leave at least this long between the end of a subject's snapshot and the start
# of its next (a busy audit costs one snapshot per interval, not one after another), and draw
# this many bootstrap resamples.
TRIBUNAL_SNAPSHOT_DELAY = env_float("TRIBUNAL_SNAPSHOT_DELAY", 0.2, minimum=0)
TRIBUNAL_SNAPSHOT_INTERVAL = env_float("TRIBUNAL_SNAPSHOT_INTERVAL", 5.0, minimum=0)
TRIBUNAL_SNAPSHOT_BOOT = env_int("TRIBUNAL_SNAPSHOT_BOOT", 1000, minimum=0)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: DRF's browsable pages carry inline styles the site's CSP refuses, and a JSON
    # API needs no second HTML face. /api/docs/ is a page in the site's own template.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Only the POSTs that queue real work are rated (config/throttles.py): per user and
    # operation; 429 with Retry-After past the rate.
    "DEFAULT_THROTTLE_CLASSES": ["config.throttles.ExpensiveOperationThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "runs": env_str("TRIBUNAL_THROTTLE_RUNS", "30/hour"),
        "recompute": env_str("TRIBUNAL_THROTTLE_RECOMPUTE", "120/hour"),
    },
    # Reverse proxies in front of the web server: the client address is then read from
    # X-Forwarded-For (throttles, login limits). 0: REMOTE_ADDR is the client.
    "NUM_PROXIES": env_int("TRIBUNAL_NUM_PROXIES", 0, minimum=0),
}
# Failed logins (login page and API token): this many per user name, or per client address,
# within the window, then 429 with Retry-After until the window ends (config/throttles.py).
TRIBUNAL_LOGIN_FAILURES_PER_USER = env_int("TRIBUNAL_LOGIN_FAILURES_PER_USER", 5, minimum=1)
TRIBUNAL_LOGIN_FAILURES_PER_ADDRESS = env_int("TRIBUNAL_LOGIN_FAILURES_PER_ADDRESS", 20, minimum=1)
TRIBUNAL_LOGIN_WINDOW_SECONDS = env_int("TRIBUNAL_LOGIN_WINDOW_SECONDS", 900, minimum=1)
SPECTACULAR_SETTINGS = {
    "TITLE": "Tribunal API",
    "DESCRIPTION": "Audit LLM judges against people.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Several models have a `status`; name each set of choices once.
    "ENUM_NAME_OVERRIDES": {
        "AuditStatusEnum": "annotation.models.Audit.Status",
        "JobStatusEnum": "corpus.models.ImportJob.Status",  # and other pending..failed jobs
        "JudgeRunStatusEnum": "judges.models.JudgeRun.Status",
        "GateStatusEnum": ["PASS", "FAIL", "INCONCLUSIVE"],
    },
}

# Judges and models: local paths only, never downloaded at run time.
JUDGE_DEFAULT_BASE_URL = env_str("JUDGE_BASE_URL", "")
JUDGE_DEFAULT_API_KEY_ENV = env_str("JUDGE_API_KEY_ENV", "OPENAI_API_KEY")
REFUSAL_MODEL_DIR = env_str("REFUSAL_MODEL_DIR", "")
REFUSAL_LABEL_MAP = env_str("REFUSAL_LABEL_MAP", "")  # JSON: model label -> Tribunal class

# Queue: how long an annotator holds an item before it returns to the pool.
ANNOTATION_HOLD_SECONDS = env_int("ANNOTATION_HOLD_SECONDS", 600, minimum=10)
# How long an annotator may take back their latest label.
ANNOTATION_UNDO_SECONDS = env_int("ANNOTATION_UNDO_SECONDS", 30, minimum=0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# Without a broker: run tasks inline (True) or in a background thread (False, the web demo).
TRIBUNAL_TASKS_INLINE = env_bool("TRIBUNAL_TASKS_INLINE", False)
