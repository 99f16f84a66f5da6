from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class AnalysisConfig(AppConfig):
    name = "analysis"
    verbose_name = "Analysis"

    def ready(self) -> None:
        # Reports follow the labels: annotation announces a change (it may not import
        # analysis, which comes after it), and a fresh snapshot is asked for on commit.
        from annotation.signals import audit_labels_changed

        audit_labels_changed.connect(_snapshot_on_labels, dispatch_uid="analysis.snapshot")


def _snapshot_on_labels(sender: Any, *, audit: Any, **kwargs: Any) -> None:
    # Not analysis.services: that loads pandas into every web process that takes a label.
    from analysis import snapshot_requests

    snapshot_requests.snapshot_request(audit=audit)
