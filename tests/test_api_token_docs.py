"""Getting a token over the API, and the API's schema and documentation page."""

from __future__ import annotations

import re

import pytest
import yaml
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.authtoken.models import Token


def test_it_gives_a_lead_a_token_that_opens_the_api(lead: User) -> None:
    client = Client()

    first = client.post(
        "/api/token/",
        {"username": lead.username, "password": "correct-horse-battery"},
        content_type="application/json",
    )
    again = client.post(
        "/api/token/", {"username": lead.username, "password": "correct-horse-battery"}
    )
    key = first.json()["token"]
    listed = Client(HTTP_AUTHORIZATION=f"Token {key}").get("/api/datasets/")

    assert first.status_code == again.status_code == 200
    assert key == again.json()["token"] == Token.objects.get(user=lead).key
    assert listed.status_code == 200


def test_it_gives_an_annotator_a_token_with_an_annotators_rights(annotator: User) -> None:
    body = {"username": annotator.username, "password": "correct-horse-battery"}
    key = Client().post("/api/token/", body).json()["token"]
    api = Client(HTTP_AUTHORIZATION=f"Token {key}")

    assert api.get("/api/audits/").status_code == 200
    assert api.get("/api/datasets/").status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"username": "lena-lead", "password": "wrong"},
        {"username": "nobody", "password": "correct-horse-battery"},
        {"username": "lena-lead"},
    ],
)
def test_it_refuses_wrong_credentials(lead: User, body: dict[str, str]) -> None:
    response = Client().post("/api/token/", body)

    assert response.status_code == 400
    assert "token" not in response.json()
    assert not Token.objects.exists()


def test_it_needs_no_csrf_token_from_a_logged_in_browser(lead: User) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(lead)

    response = browser.post(
        "/api/token/", {"username": lead.username, "password": "correct-horse-battery"}
    )

    assert response.status_code == 200


def test_it_refuses_an_unknown_token(db: None) -> None:
    response = Client(HTTP_AUTHORIZATION="Token not-a-real-token").get("/api/audits/")

    assert response.status_code == 401


def test_it_publishes_an_openapi_schema_with_the_new_operations(client: Client, db: None) -> None:
    response = client.get("/api/schema/")

    schema = yaml.safe_load(response.content)
    assert response.status_code == 200
    assert schema["openapi"].startswith("3.")
    for route in (
        "/api/token/",
        "/api/datasets/",
        "/api/datasets/{name}/",
        "/api/datasets/{name}/pairs/",
        "/api/exports/",
        "/api/exports/manifest/",
        "/api/audits/{id}/labels/",
        "/api/items/{id}/",
    ):
        assert route in schema["paths"], route
    pairs = schema["paths"]["/api/datasets/{name}/pairs/"]["get"]
    assert {p["name"] for p in pairs["parameters"] if p["in"] == "query"} == {
        "category",
        "model",
        "page",
        "page_size",
    }
    assert set(pairs["responses"]["200"]["headers"]) == {"X-Total-Count", "Link"}


def test_it_serves_a_documentation_page_that_the_sites_csp_allows(client: Client, db: None) -> None:
    response = client.get("/api/docs/", HTTP_ACCEPT="text/html")

    html = response.content.decode()
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "/api/datasets/{name}/pairs/" in html and "/api/token/" in html
    # every script is the site's own file or inert JSON: nothing the CSP would block
    for tag in re.findall(r"<script[^>]*>", html):
        assert ('src="/static/' in tag) or ('type="application/json"' in tag), tag


def test_it_lists_every_operation_as_json_too(client: Client, db: None) -> None:
    response = client.get("/api/docs/", HTTP_ACCEPT="application/json")

    body = response.json()
    operations = {(op["method"], op["path"]) for op in body["operations"]}
    assert ("POST", "/api/token/") in operations
    assert ("GET", "/api/exports/") in operations
    assert ("POST", "/api/assignments/{id}/label/") in operations
    assert body["schema"].endswith("/api/schema/")
    datasets = next(op for op in body["operations"] if op["path"] == "/api/datasets/")
    assert datasets["url"] == "http://testserver/api/datasets/"
    assert datasets["query"] == ["page", "page_size"]
