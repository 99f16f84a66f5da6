"""The Celery app. What a worker crash does is set in config/settings.py (CELERY_*), and each
ready worker runs the job sweeps (config/leases.py) that finish jobs whose worker died."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tribunal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def _sweep_jobs(**kwargs: Any) -> None:
    from config.leases import sweeper_start

    # The apps' tasks modules register their sweeps when they are imported: finalizing the app
    # imports them (autodiscovery). Not `app.loader.import_default_modules()`: that sends
    # `import_modules`, on which Celery's Django fix-up runs `django.setup()` again, and Django
    # then points the root logger at the stderr Celery has by now redirected into logging, so
    # every later line of the worker's log (its "ready.", task errors) was lost.
    app.finalize(auto=True)
    sweeper_start()
