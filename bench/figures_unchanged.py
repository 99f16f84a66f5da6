"""Do the figures stay the same? Build fixed subjects, dump their reports, compare with a baseline.

    python bench/figures_unchanged.py                # compare with bench/figures_baseline/
    python bench/figures_unchanged.py --write        # (re)write the baseline from this code

On a fresh SQLite file (never your database) it builds, deterministically:

* ``pandalm``: the PandaLM test set from ../shared/data/pandalm (three files, the pandalm
  importer), with refusal classes and text features drawn from a fixed seed instead of the
  transformer classifier (too slow for a check);
* ``audit``: seed_demo's audit over it (100 items, seed 7, two annotators who label 60 items
  each with PandaLM's own annotators' votes) and seed_demo's release gate;
* ``planted``: the planted refusal/style study (900 pairs, seed 11) written as pairs with
  classes, features, judge verdicts and human votes.

For each it writes ``manage.py report --format json`` (and ``manage.py gate --format json``
for the audit) with ids, timestamps and timings stripped, and compares with
``bench/figures_baseline/<name>.json``. Prints one line per subject and exits 1 on any change.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import tempfile
import uuid
from datetime import timedelta
from io import StringIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path.cwd()  # run from the worktree whose code is to be checked
BASELINE = Path(__file__).resolve().parent / "figures_baseline"
DATA = ROOT.parent / "shared" / "data"
SEED = 20261206
PANDALM_FILES = ["testset-v1.json", "gpt-3.5-turbo-testset-v1.json", "pandalm-7b-testset-v1.json"]
GATE_RULES = [
    "lower(cohen_kappa) >= 0.4 on each slice with n >= 30",
    "lower(percent_agreement) >= 0.6",
    "interval(refusal_gap.ethical_refusal) excludes above 0.10",
]
PLANTED_MODELS = ("alpha-7b", "beta-13b", "gamma-70b", "delta-8x7b")
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

    from analysis import services

    # Snapshots are computed here, once, by the report command: no background runs.
    services.snapshot_request = lambda **kwargs: None  # type: ignore[assignment]
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
    """seed_demo's audit: 100 items, seed 7, 60 items labelled by each of two annotators."""
    from django.contrib.auth import get_user_model
    from django.db.models import Count
    from django.utils import timezone

    from annotation import queue, services
    from config.roles import ensure_groups
    from corpus.models import HumanVote
    from judges.models import Judge

    # The queue draws sides and tie-breaks with ``secrets``: seeded here so labels repeat.
    draws = random.Random(SEED)
    queue.secrets = SimpleNamespace(randbelow=draws.randrange)  # type: ignore[attr-defined]
    lead_group, annotator_group = ensure_groups()
    users = get_user_model()
    lead = users.objects.create(username="lead")
    lead.groups.add(lead_group)
    annotators = []
    for name in ("annotator1", "annotator2"):
        user = users.objects.create(username=name)
        user.groups.add(annotator_group)
        annotators.append(user)
    judges = list(
        Judge.objects.filter(verdicts__pair__dataset=dataset)
        .annotate(n=Count("verdicts"))
        .order_by("name")
    )
    audit = services.audit_build(
        name="PandaLM demo audit",
        dataset=dataset,
        judges=judges,
        size=100,
        overlap_k=2,
        quotas={"low_margin": 60, "random": None},
        thresholds={},
        seed=7,
        created_by=lead,
        annotators=annotators,
    )
    for annotator in annotators:
        done = 0
        while done < 60:
            served = timezone.now() - timedelta(seconds=20)
            assignment = queue.queue_next(audit=audit, annotator=annotator, now=served)
            if assignment is None:
                break
            vote = (
                HumanVote.objects.filter(
                    pair=assignment.item.pair, voter_id__endswith=annotator.username
                )
                .values_list("outcome", flat=True)
                .first()
            )
            if vote is None:
                queue.item_skip(assignment=assignment, reason="no PandaLM vote")
                continue
            queue.label_submit(
                assignment=assignment,
                choice=queue.to_side(vote, a_on_left=assignment.a_on_left),
                submission_key=uuid.uuid4(),
                time_spent_ms=20_000,
                now=timezone.now(),
            )
            done += 1
    judge = next(j for j in judges if j.name.startswith("gpt-3.5-turbo"))
    _gate_set(audit, judge, lead)
    return audit


def _gate_set(audit: Any, judge: Any, lead: Any) -> None:
    try:  # where the gates live after issue 10
        from analysis.gates import gate_set
    except ImportError:
        from analysis.services import gate_set  # type: ignore[attr-defined,no-redef]
    gate_set(audit=audit, judge=judge, rules=GATE_RULES, created_by=lead)


def _simulation() -> Any:
    for module in ("bench.simulation", "analysis.simulation", "analysis.metrics.refusal"):
        try:
            return __import__(module, fromlist=["simulate_study"])
        except ImportError:
            continue
    raise SystemExit("no simulate_study found")


def build_planted(n_pairs: int = 900, seed: int = 11) -> Any:
    """The planted study as tests/analysis/test_studies.py writes it."""
    from corpus.models import Dataset, HumanVote, Pair, Prompt, Response
    from judges.models import Judge, ResponseClassification, ResponseFeatures, Verdict

    simulation = _simulation()
    simulated = simulation.simulate_study(simulation.PlantedStudy(), n_pairs, seed=seed)
    dataset = Dataset.objects.create(name=f"planted-{seed}")
    judge = Judge.objects.create(
        name="planted judge",
        provider=Judge.Provider.IMPORTED,
        model_id="gpt-4o-2024-08-06",
        fingerprint=_sha("planted judge:gpt-4o-2024-08-06"),
    )
    frame = simulated.pairs
    prompts = Prompt.objects.bulk_create(
        Prompt(dataset=dataset, text=f"prompt {k}", content_hash=_sha(f"{seed}:{k}"))
        for k in range(n_pairs)
    )
    responses = Response.objects.bulk_create(
        Response(
            prompt=prompts[k],
            model_name=PLANTED_MODELS[(k + offset * (1 + k // 4)) % 4],
            text=f"response {k}{side}",
            content_hash=_sha(f"{seed}:{k}:{side}"),
        )
        for k in range(n_pairs)
        for offset, side in ((0, "a"), (1, "b"))
    )
    pairs = Pair.objects.bulk_create(
        Pair(
            dataset=dataset,
            source_key=f"p{k}",
            prompt=prompts[k],
            response_a=responses[2 * k],
            response_b=responses[2 * k + 1],
            content_hash=_sha(f"pair:{seed}:{k}"),
        )
        for k in range(n_pairs)
    )
    classes, features = [], []
    for k, row in frame.iterrows():
        for offset, side in ((0, "a"), (1, "b")):
            response = responses[2 * int(k) + offset]
            classes.append(
                ResponseClassification(
                    response=response, classifier="c" * 64, label=row[f"class_{side}"], score=0.9
                )
            )
            features.append(
                ResponseFeatures(
                    response=response,
                    extractor="e" * 64,
                    length_chars=int(row[f"tokens_{side}"]) * 4,
                    length_tokens=int(row[f"tokens_{side}"]),
                    headers=int(row[f"headers_{side}"]),
                    list_items=int(row[f"lists_{side}"]),
                    bold=int(row[f"bold_{side}"]),
                    prompt_similarity=float(row[f"sim_{side}"]),
                )
            )
    ResponseClassification.objects.bulk_create(classes)
    ResponseFeatures.objects.bulk_create(features)
    verdicts = simulated.verdicts
    judged = verdicts[verdicts["rater"] == "judge"]
    Verdict.objects.bulk_create(
        Verdict(judge=judge, pair=pairs[int(k)], outcome=v, outcome_ab=v, status_ab="ok")
        for k, v in zip(judged["pair_id"], judged["verdict"], strict=True)
    )
    people = verdicts[verdicts["rater"] == "human"]
    HumanVote.objects.bulk_create(
        HumanVote(
            pair=pairs[int(k)],
            source=HumanVote.Source.GENERIC,
            voter_id="crowd",
            outcome=v,
            row_hash=_sha(f"vote:{k}"),
        )
        for k, v in zip(people["pair_id"], people["verdict"], strict=True)
    )
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


def _first_difference(old: Any, new: Any, path: str = "") -> str | None:
    if type(old) is not type(new):
        return f"{path or '/'}: {old!r} -> {new!r}"
    if isinstance(old, dict):
        for key in sorted(set(old) | set(new), key=str):
            if key not in old or key not in new:
                return f"{path}/{key}: only in the {'new' if key in new else 'baseline'} report"
            found = _first_difference(old[key], new[key], f"{path}/{key}")
            if found:
                return found
        return None
    if isinstance(old, list):
        if len(old) != len(new):
            return f"{path}: {len(old)} entries -> {len(new)}"
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            found = _first_difference(a, b, f"{path}[{index}]")
            if found:
                return found
        return None
    return None if old == new else f"{path}: {old!r} -> {new!r}"


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
        difference = _first_difference(old, report)
        changed += difference is not None
        print(f"{name}: {'identical' if difference is None else 'CHANGED at ' + difference}")
    sys.exit(1 if changed else 0)


if __name__ == "__main__":
    main()
