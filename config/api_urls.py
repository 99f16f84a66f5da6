"""The REST API's URLs (mounted at /api/), its token endpoint and its documentation.

- `POST /api/token/`: a user name and password give the user's token (created on first use);
  send it as `Authorization: Token <key>`. Session logins work too, for browsers.
- `GET /api/schema/`: the OpenAPI 3 schema (drf-spectacular).
- `GET /api/docs/`: every operation with its summary and parameters, generated from that
  schema: a page in the site's own template for a browser, JSON otherwise. Swagger UI is not
  used: it loads its scripts from a CDN and runs an inline script, both of which the site's
  Content Security Policy (`script-src 'self'`) blocks. DRF's browsable API is switched off
  for the same reason (its templates carry inline styles): every other endpoint answers JSON.
"""

from __future__ import annotations

import functools
from typing import Any

from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from drf_spectacular.views import SpectacularAPIView
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer, TemplateHTMLRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from config.throttles import LoginThrottle, login_success_record

METHODS = ("get", "post", "put", "patch", "delete")


class TokenApi(ObtainAuthToken):
    # The credentials are in the body; a browser's session cookie must not make this a
    # session-authenticated (CSRF-checked) request.
    authentication_classes = ()
    # Failed attempts count with the login page's (config.throttles): 429 with Retry-After.
    throttle_classes = (LoginThrottle,)

    @extend_schema(
        operation_id="token_obtain",
        summary="Your API token, from your user name and password",
        description="Returns the user's token (the same one until it is deleted in the "
        "admin). Send it as `Authorization: Token <key>` on every other call.",
        request=AuthTokenSerializer,
        responses={
            200: inline_serializer("TokenOutput", fields={"token": serializers.CharField()}),
            400: OpenApiResponse(description="wrong or missing credentials"),
            429: OpenApiResponse(
                description="too many failed logins for this user name or from this address; "
                "try again after Retry-After seconds"
            ),
        },
        auth=[],
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response = super().post(request, *args, **kwargs)
        login_success_record(request, str(request.data.get("username", "")))
        return response


@functools.cache
def _operations() -> list[dict[str, Any]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    rows = []
    for route, item in schema["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            rows.append(
                {
                    "method": method.upper(),
                    "path": route,
                    "summary": operation.get("summary", ""),
                    "query": [
                        p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"
                    ],
                }
            )
    return rows


class ApiDocs(APIView):
    """Tribunal's REST API: every operation, from the OpenAPI 3 schema at /api/schema/.

    Authenticate with a token: POST your user name and password to /api/token/, then send
    the header "Authorization: Token <key>". In a browser your login session works as well
    (the page is templates/api/docs.html; the API itself answers JSON).

    Roles: datasets, imports, judges, reports, exports, building audits and adjudication are
    for leads; the queue (next item, label, skip, undo, your labels) is for an audit's
    annotators, who are served texts by screen side only.

    Lists are paginated with ?page= and ?page_size=; the body is a JSON array, the total is
    in X-Total-Count and the other pages in Link. A bad query parameter is a 400 whose key
    names it.
    """

    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer, TemplateHTMLRenderer]
    template_name = "api/docs.html"

    def get_view_name(self) -> str:
        return "Tribunal API"

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        base = request.build_absolute_uri("/").rstrip("/")
        operations = [
            {**row, "url": base + row["path"]}
            if row["method"] == "GET" and "{" not in row["path"]
            else row
            for row in _operations()
        ]
        return Response(
            {
                "schema": reverse("api_schema", request=request),
                "token": reverse("api_token", request=request),
                "operations": operations,
            }
        )


urlpatterns: list[URLPattern | URLResolver] = [
    path("schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("docs/", ApiDocs.as_view(), name="api_docs"),
    path("token/", TokenApi.as_view(), name="api_token"),
    path("imports/", include("corpus.importers.api")),
    path("", include("corpus.api")),
    path("", include("annotation.api")),
    path("", include("judges.api")),
    path("", include("analysis.api_urls")),
]
