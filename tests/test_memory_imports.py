"""Memory at rest: a web worker does not load what only a task needs, and a Celery worker loads
the models on first use. Each check imports in a fresh interpreter and lists the libraries it
ended up with (bench/http_load.py prints the resident memory this keeps down)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("torch", "transformers", "tokenizers", "sklearn", "statsmodels")
NUMERIC = ("numpy", "pandas", "scipy", "pyarrow")


def loaded_after(code: str, **env: str) -> set[str]:
    script = (
        "import json, sys, django; django.setup()\n"
        + code
        + "\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "config.settings", "PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_the_urlconf_loads_no_model_or_model_fitting_library() -> None:
    loaded = loaded_after(
        "import config.urls\n"
        "from django.urls import get_resolver\n"
        "get_resolver().url_patterns\n"
        "from django.contrib import admin\n"
        "admin.autodiscover()"
    )

    assert loaded.isdisjoint(MODELS), loaded & set(MODELS)


def test_the_urlconf_loads_no_numeric_library_until_a_report_is_asked_for() -> None:
    # Every URL module of the site, reversed and checked as a request does, with the admin
    # and the template libraries: the report, export and browser views (pandas, scipy,
    # pyarrow) are named by dotted path (config.lazy) and load on their first request.
    loaded = loaded_after(
        "import config.urls\n"
        "from django.urls import get_resolver, reverse, resolve\n"
        "get_resolver().url_patterns\n"
        "reverse('audit_report', args=[1]); reverse('api-audit-export', args=[1])\n"
        "resolve('/reports/audit/1/'); resolve('/api/audits/1/report/')\n"
        "from django.contrib import admin\n"
        "admin.autodiscover()\n"
        "from django.template import engines\n"
        "engines['django'].engine.template_libraries\n"
        "from django.core import checks\n"
        "assert not [e for e in checks.run_checks(tags=['urls']) if e.is_serious()]"
    )

    assert loaded.isdisjoint(NUMERIC + MODELS), loaded & set(NUMERIC + MODELS)


@pytest.mark.slow  # end to end, over 2 s (issue 10)
def test_a_report_view_loads_its_module_on_first_use() -> None:
    loaded = loaded_after(
        "from django.urls import resolve\n"
        "match = resolve('/api/audits/1/report/')\n"
        "assert match.func.__module__ == 'analysis.api' and not match.func.loaded\n"
        "assert 'pandas' not in sys.modules\n"
        "assert match.func.csrf_exempt and match.func.cls.__module__ == 'analysis.api'\n"
        "assert match.func.loaded"
    )

    assert {"analysis", "pandas", "scipy"} <= loaded


def test_a_label_asks_for_a_snapshot_without_loading_the_statistics() -> None:
    # What a label's request runs after its commit: the receiver of audit_labels_changed asks
    # for a snapshot, and config.tasks publishes it to the broker by name (here a closed port:
    # the task waits in the outbox). Neither may import the task bodies' pandas and scipy.
    loaded = loaded_after(
        "import config.urls\n"
        "from types import SimpleNamespace\n"
        "from annotation.signals import audit_labels_changed\n"
        "from config import tasks\n"
        "audit_labels_changed.send(sender=None, audit=SimpleNamespace(pk=1))\n"
        "assert tasks.outbox_size() == 1, tasks.outbox_size()",
        CELERY_BROKER_URL="redis://127.0.0.1:9/0",
        CACHE_URL="redis://127.0.0.1:9/0",
    )

    assert loaded.isdisjoint(NUMERIC + MODELS), loaded & set(NUMERIC + MODELS)


@pytest.mark.slow  # end to end, over 2 s (issue 10)
def test_a_worker_loads_the_tasks_without_the_models() -> None:
    loaded = loaded_after(
        "from config import celery_app\ncelery_app.loader.import_default_modules()"
    )

    assert loaded.isdisjoint(MODELS), loaded & set(MODELS)


def test_the_classification_classes_are_the_classifiers() -> None:
    from judges.classification import CLASSES
    from judges.refusal import CLASSES as CLASSIFIER_CLASSES

    assert CLASSES == CLASSIFIER_CLASSES
