"""Memory at rest: a web worker does not load what only a task needs, and a Celery worker loads
the models on first use. Each check imports in a fresh interpreter and lists the libraries it
ended up with (bench/http_load.py prints the resident memory this keeps down)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("torch", "transformers", "tokenizers", "sklearn", "statsmodels")
NUMERIC = ("numpy", "pandas", "scipy", "pyarrow")


def loaded_after(code: str) -> set[str]:
    script = (
        "import json, sys, django; django.setup()\n"
        + code
        + "\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "config.settings", "PATH": "/usr/bin:/bin"},
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


def test_the_url_modules_outside_analysis_load_no_numeric_library() -> None:
    # Reports need pandas; the pages and APIs of the other apps (the annotators' among them)
    # must not pull it in. analysis's URL modules still do: see the closing note of issue 15.
    loaded = loaded_after(
        "import importlib\n"
        "for name in ('corpus.urls', 'corpus.importers.urls', 'corpus.importers.api',\n"
        "             'corpus.api', 'annotation.urls', 'annotation.api', 'judges.urls',\n"
        "             'judges.api', 'config.throttles'):\n"
        "    importlib.import_module(name)"
    )

    assert loaded.isdisjoint(NUMERIC + MODELS), loaded & set(NUMERIC + MODELS)


def test_a_worker_loads_the_tasks_without_the_models() -> None:
    loaded = loaded_after(
        "from config import celery_app\ncelery_app.loader.import_default_modules()"
    )

    assert loaded.isdisjoint(MODELS), loaded & set(MODELS)


def test_the_classification_classes_are_the_classifiers() -> None:
    from judges.classification import CLASSES
    from judges.refusal import CLASSES as CLASSIFIER_CLASSES

    assert CLASSES == CLASSIFIER_CLASSES
