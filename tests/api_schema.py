"""The REST API's own OpenAPI schema (drf-spectacular) for schemathesis, and what its tests share
(`test_api_schema.py`: examples and fuzzing; `test_api_schema_boundaries.py`: the coverage
phase). Its URLs are the site's, with the calibration-set export included once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.urls import NoReverseMatch, include, path, reverse
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import response_schema_conformance

from config.roles import ensure_groups


def _site_urls() -> list[Any]:
    # The calibration-set export until config/urls.py includes it (then it is not doubled).
    try:
        reverse("api-audit-export", args=[1], urlconf="config.urls")
        return [path("", include("config.urls"))]
    except NoReverseMatch:
        return [path("", include("analysis.export_urls")), path("", include("config.urls"))]


urlpatterns = _site_urls()
URLCONF = __name__  # the tests run with these urls: pytest.mark.urls(URLCONF)

# Operations left out, each with the problem found (fix the endpoint, then remove it here).
EXCLUDED: dict[str, str] = {}


@pytest.fixture(autouse=True)
def keep_test_connection() -> Iterator[None]:
    # Django's own test client does this too: a request must not close the connection that
    # holds the test's transaction (on PostgreSQL close_old_connections would end it).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def lead_token(db: None) -> str:
    lead_group, _ = ensure_groups()
    user = User.objects.create_user(username="schema-lead", password="correct-horse-battery")
    user.groups.add(lead_group)
    return Token.objects.create(user=user).key


def load_schema(generated: dict[str, Any], *phases: str) -> Any:
    """The schema served by the Django app itself (schemathesis calls it through WSGI), walked
    in schemathesis's `phases` only."""
    enabled = {name: {"enabled": name in phases} for name in ("examples", "coverage", "fuzzing")}
    config = SchemathesisConfig.from_dict({"phases": enabled})
    loaded = schemathesis.openapi.from_dict(generated, config=config)
    loaded.app = WSGIHandler()
    for label in EXCLUDED:
        method, route = label.split(" ", 1)
        loaded = loaded.exclude(method=method, path=route)
    return loaded


# Generated in-process (no request, no database) from this module's urls.
generated = json.loads(
    OpenApiJsonRenderer().render(
        SchemaGenerator(urlconf=URLCONF).get_schema(request=None, public=True)
    )
)
walk = settings(
    max_examples=10,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def call_and_validate(case: Any, lead_token: str) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Token {lead_token}"},
        checks=[not_a_server_error, response_schema_conformance],
    )


def schema_test(name: str, *phases: str) -> Any:
    """The test that walks the schema in schemathesis's `phases`: every operation called with
    the phases' inputs as the lead, each answer checked (`call_and_validate`). Bind it to
    `name` in a test module that also imports this module's fixtures."""

    @pytest.mark.urls(URLCONF)
    @load_schema(generated, *phases).parametrize()
    @walk
    def test(case: Any, lead_token: str) -> None:
        call_and_validate(case, lead_token)

    test.__name__ = test.__qualname__ = name
    return test
