"""The data browser (analysis/browse_views.py), next to the dataset pages.

Include at the site root, in config/urls.py: `path("", include("analysis.browse_urls"))`.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

from config.lazy import lazy_routes

# Loaded on first use (config.lazy): the browser reads through analysis.selectors (pandas).

urlpatterns: list[URLPattern | URLResolver] = [
    *lazy_routes(
        "analysis.browse_views",
        [
            ("datasets/<slug:name>/pairs/", "pair_list", "pair_list"),
            ("datasets/<slug:name>/pairs/<int:pk>/", "pair_detail", "pair_detail"),
        ],
    )
]
