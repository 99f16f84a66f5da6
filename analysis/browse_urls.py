"""The data browser (analysis/browse_views.py), next to the dataset pages.

Include at the site root, in config/urls.py: `path("", include("analysis.browse_urls"))`.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from config.lazy import lazy_view

# Loaded on first use (config.lazy): the browser reads through analysis.selectors (pandas).

urlpatterns: list[URLPattern | URLResolver] = [
    path(
        "datasets/<slug:name>/pairs/",
        lazy_view("analysis.browse_views.pair_list"),
        name="pair_list",
    ),
    path(
        "datasets/<slug:name>/pairs/<int:pk>/",
        lazy_view("analysis.browse_views.pair_detail"),
        name="pair_detail",
    ),
]
