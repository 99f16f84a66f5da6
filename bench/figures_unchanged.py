"""Do the figures stay the same? Build fixed subjects, dump their reports, compare with a baseline.

    python bench/figures_unchanged.py                # compare with bench/figures_baseline/
    python bench/figures_unchanged.py --write        # (re)write the baseline from this code

On a fresh SQLite file (never your database) it builds, deterministically:

* ``pandalm``: the PandaLM test set from ../shared/data/pandalm (three files, the pandalm
  importer), with refusal classes and text features drawn from a fixed seed instead of the
  transformer classifier (too slow for a check);
* ``audit``: seed_demo's audit over it (its own steps: 100 items, seed 7, two annotators who
  label 60 items each with PandaLM's own annotators' votes, the queue's draws seeded) and
  seed_demo's release gate;
* ``planted``: the planted refusal/style study (900 pairs, seed 11) written as pairs with
  classes, features, judge verdicts and human votes.

For each it writes ``manage.py report --format json`` (and ``manage.py gate --format json``
for the audit) with ids, timestamps and timings stripped, and compares with
``bench/figures_baseline/<name>.json``. Prints one line per subject: ``identical``, ``unchanged,
figures added at ...`` (new keys only; every figure of the baseline as it was) or ``CHANGED at
...``, and exits 1 on any change.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import random
import re
import sys
import tempfile
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path.cwd()  # run from the worktree whose code is to be checked
BASELINE = Path(__file__).resolve().parent / "figures_baseline"
DATA = ROOT.parent / "shared" / "data"
SEED = 20261206
PANDALM_FILES = ["testset-v1.json", "gpt-3.5-turbo-testset-v1.json", "pandalm-7b-testset-v1.json"]
# Keys whose values differ between two builds of the same data: row ids, clocks, timings.
VOLATILE = {
    "id",
    "pk",
    "snapshot",
    "watermark",
    "created_at",
    "computed_at",
    "compute_ms",
    "updated_at",
}


def _setup(db: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{db}"
    os.environ["TRIBUNAL_VAR_DIR"] = str(db.parent)
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ["TRIBUNAL_TASKS_INLINE"] = "0"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    from analysis import snapshot_requests

    # Snapshots are computed here, once, by the report command: no background runs.
    snapshot_requests.snapshot_request = lambda **kwargs: None  # type: ignore[assignment]
    call_command("migrate", verbosity=0)


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def _classes_and_features(dataset: Any, seed: int) -> None:
    """Refusal classes and features for every response, from a fixed seed (no classifier)."""
    import numpy as np

    from corpus.models import Response
    from judges.models import ResponseClassification, ResponseFeatures

    rng = np.random.default_rng(seed)
    classes = ["normal"] * 12 + [
        "ethical_refusal",
        "ethical_disclaimer",
        "technical_refusal",
        "technical_disclaimer",
    ]
    responses = list(Response.objects.filter(prompt__dataset=dataset).order_by("content_hash"))
    labels = rng.choice(classes, size=len(responses))
    ResponseClassification.objects.bulk_create(
        ResponseClassification(
            response=r, classifier="f" * 64, label=str(label), score=0.9, scores={}
        )
        for r, label in zip(responses, labels, strict=True)
    )
    ResponseFeatures.objects.bulk_create(
        ResponseFeatures(
            response=r,
            extractor="x" * 64,
            length_chars=len(r.text),
            length_tokens=max(1, len(r.text.split())),
            headers=r.text.count("\n#"),
            list_items=r.text.count("\n- ") + r.text.count("\n* "),
            bold=r.text.count("**") // 2,
            prompt_similarity=float(rng.uniform(0.1, 0.9)),
        )
        for r in responses
    )


def build_pandalm() -> Any:
    from corpus.importers.services import dataset_for_import, import_file
    from corpus.models import ImportJob

    dataset = dataset_for_import(name="pandalm")
    for name in PANDALM_FILES:
        job = import_file(dataset=dataset, fmt="pandalm", path=DATA / "pandalm" / name)
        if job.status != ImportJob.Status.DONE:
            raise SystemExit(f"{name}: import failed: {job.errors[:3]}")
    _classes_and_features(dataset, SEED)
    return dataset


def build_audit(dataset: Any) -> Any:
    """seed_demo's audit, labels and gate: its own steps, so the subject is the demo's."""
    from annotation import queue
    from config.management.commands.seed_demo import Command as SeedDemo
    from config.roles import ensure_groups

    # The queue draws sides and tie-breaks with ``secrets``: seeded here so labels repeat.
    draws = random.Random(SEED)
    queue.secrets = SimpleNamespace(randbelow=draws.randrange)  # type: ignore[attr-defined]
    demo = SeedDemo(stdout=StringIO())
    lead_group, annotator_group = ensure_groups()
    groups = {"lead": lead_group, "annotator1": annotator_group, "annotator2": annotator_group}
    logins = {name: demo._user(name, group) for name, group in groups.items()}
    audit = demo._build_audit(dataset, logins)
    demo._prelabel(audit)
    demo._gate(audit)
    return audit


def _simulation() -> Any:
    """bench/simulation.py next to this script (also when checking another tree's code)."""
    path = Path(__file__).resolve().with_name("simulation.py")
    spec = importlib.util.spec_from_file_location("figures_simulation", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def build_planted(n_pairs: int = 900, seed: int = 11) -> Any:
    """The planted study as tests/analysis/test_studies.py writes it."""
    from corpus.models import Dataset
    from judges.models import Judge

    simulation = _simulation()
    simulated = simulation.simulate_study(simulation.PlantedStudy(), n_pairs, seed=seed)
    dataset = Dataset.objects.create(name=f"planted-{seed}")
    judge = Judge.objects.create(
        name="planted judge",
        provider=Judge.Provider.IMPORTED,
        model_id="gpt-4o-2024-08-06",
        fingerprint=_sha("planted judge:gpt-4o-2024-08-06"),
    )
    simulation.study_write(simulated, dataset, judge, seed=seed)
    return dataset


def _strip(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _strip(v) for k, v in data.items() if k not in VOLATILE}
    if isinstance(data, list):
        return [_strip(v) for v in data]
    return data


def _command(*args: str) -> Any:
    from django.core.management import call_command

    out = StringIO()
    with contextlib.suppress(SystemExit):  # the gate command exits with the gate's status
        call_command(*args, stdout=out, stderr=StringIO())
    return _strip(json.loads(out.getvalue()))


def _differences(old: Any, new: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every difference as (kind, where): kind "added" for a key only the new report has,
    "changed" for anything else (a value, a type, a list's length, a key that went away)."""
    if type(old) is not type(new):
        yield "changed", f"{path or '/'}: {old!r} -> {new!r}"
    elif isinstance(old, dict):
        for key in sorted(set(old) | set(new), key=str):
            if key not in old:
                yield "added", f"{path}/{key}"
            elif key not in new:
                yield "changed", f"{path}/{key}: only in the baseline report"
            else:
                yield from _differences(old[key], new[key], f"{path}/{key}")
    elif isinstance(old, list):
        if len(old) != len(new):
            yield "changed", f"{path}: {len(old)} entries -> {len(new)}"
        else:
            for index, (a, b) in enumerate(zip(old, new, strict=True)):
                yield from _differences(a, b, f"{path}[{index}]")
    elif old != new:
        yield "changed", f"{path}: {old!r} -> {new!r}"


def _verdict(old: Any, new: Any) -> tuple[bool, str]:
    """(changed?, the line to print): figures only added leave every old figure as it was."""
    found = list(_differences(old, new))
    changed = [where for kind, where in found if kind == "changed"]
    if changed:
        more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
        return True, f"CHANGED at {changed[0]}{more}"
    added = sorted({_general(where) for _, where in found})
    if added:
        return False, f"unchanged, figures added at {', '.join(added)}"
    return False, "identical"


def _general(where: str) -> str:
    """A path with judge ids and slice values folded, so one addition per judge reads once."""
    return re.sub(r"/j:\d+", "/j:*", re.sub(r"\[\d+\]", "[*]", where))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="write the baseline instead")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tribunal-figures-") as folder:
        _setup(Path(folder) / "figures.sqlite3")
        pandalm = build_pandalm()
        audit = build_audit(pandalm)
        planted = build_planted()
        reports = {
            "pandalm": _command("report", "--dataset", pandalm.name, "--format", "json"),
            "audit": _command("report", "--audit", str(audit.pk), "--format", "json"),
            "audit_gate": _command("gate", str(audit.pk), "--format", "json"),
            "planted": _command("report", "--dataset", planted.name, "--format", "json"),
        }
    changed = 0
    BASELINE.mkdir(exist_ok=True)
    for name, report in reports.items():
        path = BASELINE / f"{name}.json"
        if args.write:
            path.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
            print(f"{name}: baseline written ({path.stat().st_size:,} bytes)")
            continue
        old = json.loads(path.read_text())
        different, line = _verdict(old, report)
        changed += different
        print(f"{name}: {line}")
    sys.exit(1 if changed else 0)


if __name__ == "__main__":
    main()
