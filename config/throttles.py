"""Throttles: failed logins (web and API token) and the expensive API operations.

Logins. Failed attempts are counted per user name and per client address in the cache, over
a window of `TRIBUNAL_LOGIN_WINDOW_SECONDS`. Once either count reaches its limit
(`TRIBUNAL_LOGIN_FAILURES_PER_USER`, `..._PER_ADDRESS`), a login for that name or from that
address is answered 429 with `Retry-After`, *before* the password is checked, until the
window ends; a successful login clears the name's count (not the address's). Both ways in
count and are refused alike: the login page (`LimitedLoginView`) and `POST /api/token/`
(`LoginThrottle`); failures are counted through Django's `user_login_failed` signal.

This is a small limiter rather than django-axes: the rule fits in one screen, needs no table,
middleware or authentication backend, and keeps the dependency list short. Per user name it
lets an attacker lock a known name out for one window, the usual price of a per-name limit.

Expensive operations. `ExpensiveOperationThrottle`, DRF's default throttle, rates the POSTs
that queue real work (judge runs, classification runs, report recomputes, imports) per user
and per operation (`TRIBUNAL_THROTTLE_RUNS`, `TRIBUNAL_THROTTLE_RECOMPUTE`); every other request
passes after one dictionary look-up, without touching the cache.

Counts live in Django's cache: per process with the default local-memory cache (each web
process then allows its own share), shared by every web process with a Redis `CACHE_URL`.
Behind a reverse proxy, set `TRIBUNAL_NUM_PROXIES` so the client address is read from
`X-Forwarded-For` (DRF's `NUM_PROXIES`); left at 0, the proxy's address would be limited.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any, Final

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

_PREFIX: Final = "tribunal:login-failures"

# (URL name, method) of the API operations that queue real work -> throttle scope.
EXPENSIVE: Final = {
    ("api-judge-runs", "POST"): "runs",
    ("api-audit-judge-runs", "POST"): "runs",
    ("api-dataset-classify", "POST"): "runs",
    ("api_import_collection", "POST"): "runs",
    ("api-audit-report-recompute", "POST"): "recompute",
    ("api-dataset-report-recompute", "POST"): "recompute",
}


def client_address(request: HttpRequest | Request) -> str:
    """The client's address: REMOTE_ADDR, or with `TRIBUNAL_NUM_PROXIES` trusted proxies in
    front, the address the outermost of them saw (from X-Forwarded-For)."""
    meta = request.META
    proxies = int(api_settings.NUM_PROXIES or 0)
    forwarded = meta.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-min(proxies, len(hops))]
    return str(meta.get("REMOTE_ADDR", ""))


def _name_key(username: str) -> str:
    return hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:32]


def _buckets(request: HttpRequest | Request, username: str | None) -> list[tuple[str, int]]:
    """(cache key, limit) of the counts a login attempt falls under, in this window."""
    window = settings.TRIBUNAL_LOGIN_WINDOW_SECONDS
    index = int(time.time() // window)
    buckets = [
        (
            f"{_PREFIX}:addr:{client_address(request)}:{index}",
            settings.TRIBUNAL_LOGIN_FAILURES_PER_ADDRESS,
        )
    ]
    if username:
        buckets.append(
            (
                f"{_PREFIX}:user:{_name_key(username)}:{index}",
                settings.TRIBUNAL_LOGIN_FAILURES_PER_USER,
            )
        )
    return buckets


def login_retry_after(request: HttpRequest | Request, username: str | None) -> int | None:
    """Seconds until a login for `username` from this client may be tried again; None if it
    may be tried now."""
    full = [key for key, limit in _buckets(request, username) if (cache.get(key) or 0) >= limit]
    if not full:
        return None
    window = settings.TRIBUNAL_LOGIN_WINDOW_SECONDS
    return max(1, math.ceil(window - time.time() % window))


def login_failure_record(request: HttpRequest | Request, username: str | None) -> None:
    window = settings.TRIBUNAL_LOGIN_WINDOW_SECONDS
    for key, _ in _buckets(request, username):
        cache.add(key, 0, timeout=window)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=window)


def _on_login_failed(
    sender: Any, credentials: dict[str, Any], request: Any = None, **_: Any
) -> None:
    if request is not None:
        login_failure_record(request, str(credentials.get("username") or ""))


def login_success_record(request: HttpRequest | Request, username: str) -> None:
    """A successful login clears the name's count (the address keeps its own)."""
    for key, _ in _buckets(request, username)[1:]:
        cache.delete(key)


def _on_logged_in(sender: Any, request: Any, user: Any, **_: Any) -> None:
    if request is not None:
        login_success_record(request, user.get_username())


def signals_connect() -> None:
    user_login_failed.connect(_on_login_failed, dispatch_uid="tribunal.login_failed")
    user_logged_in.connect(_on_logged_in, dispatch_uid="tribunal.logged_in")


def _too_many(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return (
        "Too many failed logins for this user name or from this address; try again in "
        f"{minutes} minute{'s' if minutes != 1 else ''}."
    )


class LimitedLoginView(auth_views.LoginView):
    """Django's login page, refused with 429 and Retry-After while the limit holds."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        wait = login_retry_after(request, request.POST.get("username"))
        if wait is None:
            return super().post(request, *args, **kwargs)
        # An unbound form: validating it would check the password (and count a failure).
        form = self.get_form_class()(request, initial={"username": request.POST.get("username")})
        context = self.get_context_data(form=form, throttled=_too_many(wait))
        response = self.render_to_response(context, status=429)
        response["Retry-After"] = str(wait)
        return response


class LoginThrottle(BaseThrottle):
    """`POST /api/token/` under the same limit as the login page."""

    def allow_request(self, request: Request, view: Any) -> bool:
        if request.method != "POST":
            return True
        username = request.data.get("username") if hasattr(request.data, "get") else None
        self._wait = login_retry_after(request, str(username) if username else None)
        return self._wait is None

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)


class ExpensiveOperationThrottle(SimpleRateThrottle):
    """Per user and operation, for the POSTs in `EXPENSIVE`; nothing else is counted."""

    def __init__(self) -> None:  # the scope, hence the rate, depends on the request
        pass

    def allow_request(self, request: Request, view: Any) -> bool:
        match = request.resolver_match
        scope = EXPENSIVE.get((match.url_name if match else "", request.method or ""))
        if scope is None:
            return True
        self.scope = scope
        self.rate = api_settings.DEFAULT_THROTTLE_RATES[scope]  # read now: settings may change
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        ident = request.user.pk if request.user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
