from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api_schema"), name="api_docs"),
    path("imports/", include("annotation.importers.api")),
    path("", include("annotation.api")),
    path("", include("judges.api")),
    path("", include("analysis.api")),
]
