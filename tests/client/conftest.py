"""A live Tribunal server for the client's tests: real HTTP on a free port, in this process
(pytest-django's `live_server`: a thread serving the test database, emptied after each test)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User

from tests.client import scenario
from tribunal_client import Client


@dataclass
class Server:
    url: str
    lead_token: str
    http: httpx.Client  # plain HTTP to the site, for what the client does not do (labelling)
    client: Client  # the client under test, as the lead


@pytest.fixture
def server(
    live_server: Any,
    lead: User,
    annotator: User,
    settings: Any,
    tmp_path: Path,
    tasks_inline: None,  # the client waits for imports and reports the server computes
) -> Iterator[Server]:
    settings.MEDIA_ROOT = tmp_path / "media"  # uploaded import files
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        key = scenario.token(http, lead.username)
        with Client(live_server.url, key, timeout=30) as client:
            yield Server(live_server.url, key, http, client)
