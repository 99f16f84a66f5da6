"""Fixtures of the report tests (pages and API)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.analysis.test_snapshot import AuditData, build_audit


@pytest.fixture
def data(lead: User) -> AuditData:
    """The small labelled audit of :func:`tests.analysis.test_snapshot.build_audit`, led by
    the ``lead`` persona (modules that build it otherwise define their own ``data``)."""
    return build_audit(lead=lead)


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Callable[..., Any]) -> Callable[..., Any]:
    """Run what a request left for after its commit, as a live server does at once."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def lead_committed(
    lead_client: Client, committed: Callable[..., Any], tasks_inline: None
) -> Callable[[str, str], Any]:
    """``lead_committed("get", url)``: the lead's request, then the tasks it left for after
    its commit, run inline (what a live server and its worker do)."""

    def send(method: str, url: str) -> Any:
        with committed():
            return getattr(lead_client, method)(url)

    return send


@pytest.fixture(autouse=True)
def snapshot_shape_checked() -> Iterator[None]:
    """Every snapshot an analysis test stores reads back as analysis.snapshot's model, and
    the model gives back the stored JSON exactly (keys, whole numbers and fractions)."""
    from django.db.models.signals import post_save

    from analysis.models import MetricSnapshot
    from analysis.snapshot import counts_parse, metrics_parse, unknown_keys

    problems: list[str] = []

    def check(sender: Any, instance: MetricSnapshot, created: bool, **kwargs: Any) -> None:
        for name, parse in (("metrics", metrics_parse), ("counts", counts_parse)):
            data = json.loads(json.dumps(getattr(instance, name)))
            typed = parse(data)
            problems.extend(f"{name}{key}: not in the shape" for key in unknown_keys(typed))
            if json.dumps(typed.as_json(), sort_keys=True) != json.dumps(data, sort_keys=True):
                problems.append(f"{name}: the typed snapshot dumps other JSON than was stored")

    post_save.connect(check, sender=MetricSnapshot, dispatch_uid="snapshot_shape_checked")
    try:
        yield
    finally:
        post_save.disconnect(sender=MetricSnapshot, dispatch_uid="snapshot_shape_checked")
    assert problems == []
