"""What every app's REST API shares: the lead permission, paginated lists, query parameters
checked by a serializer, and Django validation errors as 400s.

Lists are paginated by `?page=` and `?page_size=`: the body stays a JSON array of the page's
rows, the total is in `X-Total-Count` and the neighbouring pages in `Link` (RFC 8288). A query
parameter with a bad value is answered 400 with the parameter as the key:
`{"status": ["..."]}`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from config.roles import LEADS_ONLY, is_lead

MAX_PAGE_SIZE = 1000


class IsLead(BasePermission):
    """Leads only (`config.roles.is_lead`): 403 for anyone else logged in, checked before the
    view looks anything up; a request without credentials gets DRF's 401 as before."""

    message = LEADS_ONLY

    def has_permission(self, request: Request, view: Any) -> bool:
        return is_lead(request.user)


def django_errors(exc: DjangoValidationError) -> Response:
    """A service's ValidationError as a 400: `{field: [problems]}`, or `{"detail": ...}`."""
    if hasattr(exc, "error_dict"):
        return Response(exc.message_dict, status=status.HTTP_400_BAD_REQUEST)
    return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_400_BAD_REQUEST)


def _page_size() -> int:
    size = settings.REST_FRAMEWORK.get("PAGE_SIZE")
    return size if isinstance(size, int) else 100


class PageInput(serializers.Serializer):
    """`?page=` and `?page_size=` of every list; the rows come back as a JSON array, the
    total in `X-Total-Count` and the neighbouring pages in `Link` (RFC 8288)."""

    page = serializers.IntegerField(min_value=1, required=False, default=1)
    page_size = serializers.IntegerField(
        min_value=1,
        max_value=MAX_PAGE_SIZE,
        required=False,
        help_text=f"rows per page (default {_page_size()}, at most {MAX_PAGE_SIZE})",
    )


class LinkHeaderPagination(PageNumberPagination):
    """Page-number pagination that leaves the body a plain JSON array.

    The lists were plain arrays before they were paginated; keeping the body and putting the
    paging in headers (`X-Total-Count`, `Link` with first/prev/next/last) changed nothing for
    existing callers. A page or page size that cannot be served is a 400 naming it.
    """

    page_size_query_param = "page_size"

    def paginate_queryset(  # type: ignore[override]
        self, queryset: QuerySet[Any] | Sequence[Any], request: Request, view: Any = None
    ) -> list[Any]:
        wanted = query_params(PageInput, request)
        self.request = request
        size = wanted.get("page_size") or self.get_page_size(request) or 100
        paginator = self.django_paginator_class(queryset, size)
        number = wanted["page"]
        if number > paginator.num_pages:  # num_pages is 1 for an empty list
            raise ValidationError(
                {"page": [f"there is no page {number}; the last page is {paginator.num_pages}"]}
            )
        self.page = paginator.page(number)
        return list(self.page)

    def get_paginated_response(self, data: Any) -> Response:
        url = self.request.build_absolute_uri()
        last = self.page.paginator.num_pages
        pages = {"first": 1, "last": last}
        if self.page.has_previous():
            pages["prev"] = self.page.previous_page_number()
        if self.page.has_next():
            pages["next"] = self.page.next_page_number()
        links = ", ".join(
            f'<{replace_query_param(url, self.page_query_param, n)}>; rel="{rel}"'
            for rel, n in pages.items()
        )
        headers = {"X-Total-Count": str(self.page.paginator.count), "Link": links}
        return Response(data, headers=headers)


def paginated(request: Request, rows: Any, serialize: Callable[[list[Any]], Any]) -> Response:
    """One page of `rows` (a queryset or a list), serialized, with the paging headers."""
    pages = LinkHeaderPagination()
    page = pages.paginate_queryset(rows, request)
    return pages.get_paginated_response(serialize(page))


def query_params(serializer_class: type[serializers.Serializer], request: Request) -> Any:
    """The query parameters a serializer declares, validated: 400 `{name: [problem]}`."""
    params = serializer_class(data=request.query_params)
    params.is_valid(raise_exception=True)
    return params.validated_data


PAGE_HEADERS = [
    OpenApiParameter(
        "X-Total-Count",
        OpenApiTypes.INT,
        OpenApiParameter.HEADER,
        response=[200],
        description="rows in all pages together",
    ),
    OpenApiParameter(
        "Link",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=[200],
        description='the first, previous, next and last pages: `<URL>; rel="next", ...`',
    ),
]
BAD_QUERY = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="a query parameter is wrong; the parameter is the key: `{page: [problem]}`",
)


def list_schema(
    output: type[serializers.Serializer],
    summary: str,
    *,
    filters: type[serializers.Serializer] | None = None,
    methods: list[str] | None = None,
) -> Callable[[Any], Any]:
    """The OpenAPI description of a paginated list (`paginated`): the `filters` query
    parameters and the page's, the rows with their paging headers, a 400 for a bad query."""
    return extend_schema(
        methods=methods,
        parameters=[*([filters] if filters else []), PageInput, *PAGE_HEADERS],
        responses={200: output(many=True), 400: BAD_QUERY},
        summary=summary,
    )
