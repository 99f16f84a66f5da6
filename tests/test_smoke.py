from __future__ import annotations

from typing import Any

import pytest
from django.test import Client


@pytest.mark.django_db
def test_it_sends_anonymous_visitors_to_login(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_it_keeps_datasets_from_annotators(annotator_client: Client) -> None:
    assert annotator_client.get("/datasets/").status_code == 403


def test_it_lists_datasets_for_leads(lead_client: Client) -> None:
    from tests.factories import DatasetFactory

    DatasetFactory(name="pandalm", description="PandaLM test set")
    response = lead_client.get("/datasets/")
    assert response.status_code == 200
    assert b"pandalm" in response.content


def test_it_sends_a_content_security_policy(lead_client: Client) -> None:
    response = lead_client.get("/datasets/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "default-src 'self'" in policy


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["css/tribunal.css", "vendor/htmx-2.0.8.min.js", "js/workspace.js"]
)
@pytest.mark.parametrize("indexed", [True, False], ids=["indexed-at-start", "looked-up"])
def test_it_serves_static_files_without_collectstatic(
    client: Client, settings: Any, path: str, indexed: bool
) -> None:
    # DEBUG is off, as in the demo: WhiteNoise, not runserver, must serve the page's assets,
    # from its index as deployed and as looked up when asked for (as the other tests do).
    settings.WHITENOISE_AUTOREFRESH = not indexed
    response = client.get(f"/static/{path}")
    assert response.status_code == 200
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert len(body) > 100
