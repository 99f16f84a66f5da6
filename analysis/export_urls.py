"""Calibration-set downloads (a report page link and the API endpoint).

Include at the site root, in config/urls.py: `path("", include("analysis.export_urls"))`.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

from analysis.routes import file_route, named
from config.lazy import lazy_routes

# Loaded on first use (config.lazy): the exports need pandas and pyarrow.

urlpatterns: list[URLPattern | URLResolver] = [
    *lazy_routes(
        "analysis.export_views",
        [
            file_route("audit", "export", ("jsonl", "csv", "parquet"), "audit_export"),
            file_route("audit", "model-card", ("md", "json"), "audit_model_card"),
            file_route("dataset", "flags", ("jsonl", "parquet"), "dataset_flags"),
            *named(
                ("reports/audit/<int:pk>/export/", "audit_export_download"),
                ("reports/audit/<int:pk>/export/manifest.json", "audit_export_manifest"),
            ),
            ("api/audits/<int:pk>/export/", "AuditExportApi", "api-audit-export"),
            ("api/exports/", "ExportsApi", "api-exports"),
            ("api/exports/manifest/", "ExportManifestApi", "api-exports-manifest"),
            ("api/audits/<int:pk>/model-card/", "AuditModelCardApi", "api-audit-model-card"),
            ("api/datasets/<slug:name>/flags/", "DatasetFlagsApi", "api-dataset-flags"),
        ],
    )
]
