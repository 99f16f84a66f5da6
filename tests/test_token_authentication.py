"""config.authentication.TokenAuthentication against DRF's own class on the same tokens: the
same user and token, the same refusals with the same messages, and one query."""

from __future__ import annotations

from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from config.authentication import TokenAuthentication

CLASSES = [TokenAuthentication, authentication.TokenAuthentication]


def _fields(obj: object) -> dict[str, object]:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}  # type: ignore[attr-defined]


@pytest.mark.every_database
def test_it_returns_what_drfs_class_returns_in_one_query(annotator: User) -> None:
    token = Token.objects.create(user=annotator)
    with CaptureQueriesContext(connection) as queries:
        user, found = TokenAuthentication().authenticate_credentials(token.key)
    drf_user, drf_token = authentication.TokenAuthentication().authenticate_credentials(token.key)

    assert len(queries) == 1
    assert _fields(user) == _fields(drf_user) and _fields(found) == _fields(drf_token)
    assert found.user is user and user.pk == annotator.pk
    assert found.created.tzinfo is not None  # a converted value, not the database's text


@pytest.mark.parametrize("cls", CLASSES, ids=["tribunal", "drf"])
def test_it_refuses_an_unknown_token_and_an_inactive_user_as_drf_does(
    cls: type[authentication.TokenAuthentication], annotator: User
) -> None:
    token = Token.objects.create(user=annotator)
    with pytest.raises(exceptions.AuthenticationFailed, match=r"^Invalid token\.$"):
        cls().authenticate_credentials(token.key[::-1])
    annotator.is_active = False
    annotator.save()
    with pytest.raises(exceptions.AuthenticationFailed, match=r"^User inactive or deleted\.$"):
        cls().authenticate_credentials(token.key)


def test_the_api_authenticates_tokens_with_it(annotator: User) -> None:
    from django.test import Client

    token = Token.objects.create(user=annotator)
    client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    with mock.patch.object(
        TokenAuthentication,
        "authenticate_credentials",
        autospec=True,
        side_effect=TokenAuthentication.authenticate_credentials,
    ) as checked:
        assert client.get("/api/audits/").status_code == 200
    assert [call.args[1] for call in checked.call_args_list] == [token.key]
    assert Client(HTTP_AUTHORIZATION="Token nope").get("/api/audits/").status_code == 401
