"""Shared fixtures: the personas every permission test is written against."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from config.roles import ensure_groups
from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def _inline_tasks(settings: Any) -> None:
    # Tasks run inline after commit in tests; threads would outlive the test's transaction.
    settings.TRIBUNAL_TASKS_INLINE = True
    settings.CELERY_BROKER_URL = None
    # Labels trigger report snapshots inline in tests; fewer resamples keep them quick (tests of
    # the figures themselves pass their own n_boot).
    settings.TRIBUNAL_SNAPSHOT_BOOT = 50
    # Personas are created in nearly every test; the default hasher costs 0.5 s each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def lead(db: None) -> User:
    lead_group, _ = ensure_groups()
    user = UserFactory(username="lena-lead")
    user.groups.add(lead_group)
    return user


@pytest.fixture
def annotator(db: None) -> User:
    _, annotator_group = ensure_groups()
    user = UserFactory(username="ana-annotator")
    user.groups.add(annotator_group)
    return user


@pytest.fixture
def other_annotator(db: None) -> User:
    _, annotator_group = ensure_groups()
    user = UserFactory(username="otto-annotator")
    user.groups.add(annotator_group)
    return user


@pytest.fixture
def outsider(db: None) -> User:
    return UserFactory(username="olga-outsider")


def _client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def lead_client(lead: User) -> Client:
    return _client_for(lead)


@pytest.fixture
def annotator_client(annotator: User) -> Client:
    return _client_for(annotator)


@pytest.fixture
def outsider_client(outsider: User) -> Client:
    return _client_for(outsider)
