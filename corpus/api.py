"""REST API of datasets (mounted under /api/, leads only): a dataset's pairs.

The dataset list and one dataset's detail include their judge verdicts, the judges app's
data, so the judges app serves them (`judges.api`) at /api/datasets/ and
/api/datasets/<name>/; the imports are under /api/imports/ (`corpus.importers.api`).
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import URLPattern, URLResolver, path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from config.api import IsLead, list_schema, paginated, query_params
from corpus import selectors
from corpus.models import Dataset
from corpus.serializers import PairFilterInput, PairOutput


@list_schema(
    PairOutput,
    "A dataset's pairs with texts and model names, in import order (leads)",
    filters=PairFilterInput,
)
@api_view(["GET"])
@permission_classes([IsLead])
def dataset_pairs(request: Request, name: str) -> Response:
    dataset = get_object_or_404(Dataset, name=name)
    filters = query_params(PairFilterInput, request)
    rows = selectors.dataset_pairs(
        dataset, category=filters.get("category") or None, model=filters.get("model") or None
    )
    return paginated(request, rows, lambda page: PairOutput(page, many=True).data)


urlpatterns: list[URLPattern | URLResolver] = [
    path("datasets/<slug:name>/pairs/", dataset_pairs, name="api-dataset-pairs"),
]
