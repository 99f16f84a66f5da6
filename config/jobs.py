"""What every background job row holds besides its own work: who asked for it, when it was
made and finished, and the lease of the worker running it (`config.leases`).

An abstract model: the import jobs (corpus), judge runs and classification runs (judges)
inherit these columns; each keeps its own statuses, progress fields and table.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Job(models.Model):
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The worker running the job and its last sign of life (config.leases): a running job
    # whose heartbeat is older than the lease lost its worker; `attempts` counts the starts.
    lease_owner = models.CharField(max_length=100, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        abstract = True
