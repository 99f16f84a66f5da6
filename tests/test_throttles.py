"""Throttling (issue 15 item 8): failed logins per user name and per address, and the API
operations that queue real work; each refusal is a 429 with Retry-After."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

PASSWORD = "correct-horse-battery"
WEB = "/accounts/login/"
TOKEN = "/api/token/"


@pytest.fixture(autouse=True)
def _fresh_counts() -> Iterator[None]:
    cache.clear()  # the counts live in the cache, shared by every test of the process
    yield
    cache.clear()


@pytest.fixture
def lena(lead: User) -> User:
    lead.set_password(PASSWORD)
    lead.save()
    return lead


def web_login(client: Client, username: str, password: str) -> Any:
    return client.post(WEB, {"username": username, "password": password})


def token(client: Client, username: str, password: str) -> Any:
    return client.post(TOKEN, {"username": username, "password": password})


def assert_refused(response: Any) -> None:
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 900


def test_it_refuses_web_logins_for_a_name_after_five_failures_even_with_the_password(
    lena: User,
) -> None:
    client = Client()
    for _ in range(5):
        assert web_login(client, lena.username, "wrong").status_code == 200  # the form again

    checked: list[str] = []
    user_login_failed.connect(lambda **kw: checked.append("failed"), weak=False, dispatch_uid="t")
    user_logged_in.connect(lambda **kw: checked.append("in"), weak=False, dispatch_uid="t")
    try:
        assert_refused(web_login(client, lena.username, "still-wrong"))
        refused = web_login(client, lena.username, PASSWORD)
    finally:
        user_login_failed.disconnect(dispatch_uid="t")
        user_logged_in.disconnect(dispatch_uid="t")

    assert_refused(refused)
    assert (
        "Too many failed logins for this user name or from this address" in refused.content.decode()
    )
    assert "_auth_user_id" not in client.session
    assert checked == []  # refused before any password was checked


def test_it_refuses_token_requests_for_a_name_after_five_failures(lena: User) -> None:
    client = Client()
    for _ in range(5):
        assert token(client, lena.username, "wrong").status_code == 400

    refused = token(client, lena.username, PASSWORD)

    assert_refused(refused)
    assert "token" not in refused.json()


def test_web_and_token_failures_count_together_per_address(db: None, lena: User) -> None:
    client = Client()  # every request from 127.0.0.1
    for i in range(10):
        assert web_login(client, f"guess-{i}", "wrong").status_code == 200
        assert token(client, f"other-{i}", "wrong").status_code == 400

    assert_refused(token(client, lena.username, PASSWORD))  # a 21st name, from the same address
    assert_refused(web_login(client, lena.username, PASSWORD))
    # Another address is not affected, and the name itself has no failures.
    assert token(Client(REMOTE_ADDR="10.0.0.2"), lena.username, PASSWORD).status_code == 200


def test_a_successful_login_clears_the_names_count(lena: User) -> None:
    client = Client()
    for _ in range(4):
        token(client, lena.username, "wrong")
    assert token(client, lena.username, PASSWORD).status_code == 200
    for _ in range(4):
        assert token(client, lena.username, "wrong").status_code == 400

    assert token(client, lena.username, PASSWORD).status_code == 200


def test_the_limit_ends_with_its_window(lena: User, monkeypatch: pytest.MonkeyPatch) -> None:
    from config import throttles

    client = Client()
    for _ in range(5):
        token(client, lena.username, "wrong")
    assert_refused(token(client, lena.username, PASSWORD))

    later = throttles.time.time() + 900
    monkeypatch.setattr(throttles.time, "time", lambda: later)

    assert token(client, lena.username, PASSWORD).status_code == 200


def test_behind_a_proxy_the_forwarded_address_is_limited(lena: User, settings: Any) -> None:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    attacker = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    for i in range(20):
        token(attacker, f"guess-{i}", "wrong")

    assert_refused(token(attacker, lena.username, PASSWORD))
    # Another client behind the same proxy logs in.
    colleague = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert token(colleague, lena.username, PASSWORD).status_code == 200


def test_it_rates_the_operations_that_queue_work_per_user(
    lead_client: Client, settings: Any
) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"runs": "2/hour", "recompute": "2/hour"},
    }
    runs = reverse("api-judge-runs", args=[999_999])

    answers = [lead_client.post(runs, {}, content_type="application/json") for _ in range(3)]

    assert [a.status_code for a in answers[:2]] == [404, 404]  # counted, then looked up
    assert answers[2].status_code == 429
    assert 3000 < int(answers[2]["Retry-After"]) <= 3600
    # Reading is never rated, nor another operation's scope.
    assert all(lead_client.get(reverse("api-judges")).status_code == 200 for _ in range(5))
    recompute = reverse("api-dataset-report-recompute", args=["no-such-dataset"])
    assert lead_client.post(recompute).status_code == 404
