"""The data browser (analysis/browse_views.py), next to the dataset pages.

Include at the site root, in config/urls.py: `path("", include("analysis.browse_urls"))`.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from analysis import browse_views

urlpatterns: list[URLPattern | URLResolver] = [
    path("datasets/<slug:name>/pairs/", browse_views.pair_list, name="pair_list"),
    path("datasets/<slug:name>/pairs/<int:pk>/", browse_views.pair_detail, name="pair_detail"),
]
