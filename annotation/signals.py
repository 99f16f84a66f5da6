"""What the annotation app announces to the apps above it.

Audits come before the reports in the one-way flow (corpus -> judges -> annotation ->
analysis), so nothing here may import analysis; yet a report must follow every label. The
writes send `audit_labels_changed` inside their transaction, and the analysis app connects a
receiver that asks for a fresh snapshot once the transaction commits (`analysis.apps`). The
receiver schedules and returns: the annotator's request never waits for a report.
"""

from __future__ import annotations

from django.dispatch import Signal

# Sent with `audit=<Audit>` when a label is written or undone, or an item is adjudicated.
audit_labels_changed = Signal()
