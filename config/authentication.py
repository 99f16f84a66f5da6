"""The API's token check: DRF's `TokenAuthentication`, with the token and its user read by one
query from a string (``config.model_rows``) instead of the ORM's `select_related` get.

Why: after the assignment lookup, building this one query was the largest Python cost left in
`label?next=1` (17 % of a web worker's CPU in `bench/http_load.py`'s profile), paid on every API
call. The answers, the errors and their messages are DRF's own; a test runs both classes on the
same tokens.
"""

from __future__ import annotations

import functools
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from config.model_rows import ModelColumns


@functools.cache
def _columns() -> ModelColumns:
    from rest_framework.authtoken.models import Token

    return ModelColumns((Token, "t"), (get_user_model(), "u"))


@functools.cache
def _sql() -> str:
    from rest_framework.authtoken.models import Token

    quote = connection.ops.quote_name
    user = get_user_model()
    return (
        f"SELECT {_columns().select} FROM {quote(Token._meta.db_table)} t "
        f"JOIN {quote(user._meta.db_table)} u ON u.{quote(str(user._meta.pk.column))} = t.user_id "
        f"WHERE t.{quote(str(Token._meta.pk.column))} = %s"
    )


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        with connection.cursor() as cursor:
            cursor.execute(_sql(), [key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        (token, user), _rest = _columns().load(row)
        token.user = user
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return (user, token)
