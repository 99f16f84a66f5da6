"""Calibration-set export speed and memory: N audited pairs to Parquet and JSON lines.

    python bench/export_bench.py                     # SQLite (a temporary file)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tribunal python bench/export_bench.py

Never touches your data: on PostgreSQL it creates and drops a `tribunal_bench_export`
database on the same server, on SQLite it uses a temporary file. It bulk-creates one audit of
N pairs (seeded texts of about 500 characters per response), two labels per pair with their
assignments, and two judges' verdicts in both orders, then exports the audit once per format,
each in a fresh process so its peak memory is its own, in the nested `generic` layout (the
export before issue 13) and the `flat` one (the default since), so one run prints before and
after. Goals: at most 5 s and 500 MB each.
Prints e.g. `export 50,000 pairs to parquet, flat (sqlite): 3.2 s, cpu 3.0 s, peak 210 MB, file
18 MB` (wall time, the process's CPU time, which is steadier on a busy machine, peak resident
memory of the whole process including Django, and the file's size). The pyarrow import (about
a second, paid once by a running server) is not timed.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "tribunal_bench_export"
SIZE = 50_000
SEED = 20240601
BATCH = 2000
WORDS = [
    "the",
    "a",
    "model",
    "answer",
    "question",
    "because",
    "however",
    "therefore",
    "example",
    "code",
    "function",
    "value",
    "data",
    "result",
    "first",
    "second",
    "step",
    "explain",
    "consider",
    "important",
    "note",
    "python",
    "list",
    "return",
    "user",
]


def _setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def _text(rng: random.Random, chars: int) -> str:
    return " ".join(rng.choices(WORDS, k=chars // 6)).capitalize() + "."


def seed(n: int) -> int:
    """Bulk-creates the audit; returns its id."""
    _setup()
    from django.contrib.auth.models import User
    from django.db import transaction
    from django.utils import timezone

    from annotation import models as am
    from bench.benchrows import imported_judge, pair_of, submitted_assignment
    from corpus import models as dm
    from judges import models as jm

    rng = random.Random(SEED + n)
    outcomes = ["A", "B", "tie"]
    now = timezone.now()
    with transaction.atomic():
        users = [User.objects.create(username=f"bench-annotator-{i}") for i in range(4)]
        lead = User.objects.create(username="bench-lead")
        dataset = dm.Dataset.objects.create(name=f"bench-export-{n}")
        audit = am.Audit.objects.create(
            name="bench", dataset=dataset, created_by=lead, target_size=n
        )
        judges = [
            imported_judge(name=f"bench-judge-{j}", model_id=f"model-{j}", fingerprint=f"{j:064x}")
            for j in range(2)
        ]
        for start in range(0, n, BATCH):
            keys = range(start, min(start + BATCH, n))
            prompts = dm.Prompt.objects.bulk_create(
                dm.Prompt(dataset=dataset, text=_text(rng, 120), content_hash=f"p{i}") for i in keys
            )
            responses = dm.Response.objects.bulk_create(
                dm.Response(
                    prompt=prompt,
                    model_name=f"model-{side}",
                    text=_text(rng, 500),
                    content_hash=f"r{side}{i}",
                )
                for i, prompt in zip(keys, prompts, strict=True)
                for side in "ab"
            )
            pairs = dm.Pair.objects.bulk_create(
                pair_of(
                    responses,
                    k,
                    dataset=dataset,
                    source_key=f"bench-{i}",
                    prompt=prompt,
                    content_hash=f"pair{i}",
                )
                for k, (i, prompt) in enumerate(zip(keys, prompts, strict=True))
            )
            items = am.AuditItem.objects.bulk_create(
                am.AuditItem(
                    audit=audit,
                    pair=pair,
                    stratum=rng.choice(["random", "low_margin"]),
                    inclusion_probability=rng.choice([0.1, 0.5, 1.0]),
                    position=i,
                    label_count=2,
                )
                for i, pair in zip(keys, pairs, strict=True)
            )
            pairs_of_annotators = [rng.sample(users, 2) for _ in items]
            assignments = am.Assignment.objects.bulk_create(
                submitted_assignment(item, user, rng=rng, now=now)
                for item, two in zip(items, pairs_of_annotators, strict=True)
                for user in two
            )
            am.Label.objects.bulk_create(
                am.Label(
                    item=a.item,
                    assignment=a,
                    annotator=a.annotator,
                    outcome=rng.choice(outcomes),
                    time_spent_ms=rng.randrange(2000, 60000),
                    submission_key=uuid.UUID(int=rng.getrandbits(128)),
                )
                for a in assignments
            )
            jm.Verdict.objects.bulk_create(
                jm.Verdict(
                    judge=judge,
                    pair=pair,
                    outcome_ab=rng.choice(outcomes),
                    outcome_ba=rng.choice(outcomes),
                    status_ab="ok",
                    status_ba="ok",
                    outcome=rng.choice(outcomes),
                    margin=rng.uniform(-3, 3),
                    raw_ab="[[A]]",
                    raw_ba="[[B]]",
                )
                for pair in pairs
                for judge in judges
            )
    return audit.pk


def export(n: int, audit_id: int, fmt: str, out: Path, layout: str) -> None:
    _setup()
    from django.db import connection

    from analysis.export import export_to_file

    if fmt == "parquet":
        import pyarrow.parquet  # noqa: F401  - loaded once by a running server; not timed here
    cpu_before = time.process_time()
    started = time.perf_counter()
    result = export_to_file(audit_ids=[audit_id], fmt=fmt, path=out, layout=layout)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    if result["counts"]["pairs"] != n:
        print(f"export {n:,} pairs to {fmt}, {layout}: FAILED ({result['counts']})", flush=True)
        sys.exit(1)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size_mb = out.stat().st_size / 1e6
    print(
        f"export {n:,} pairs to {fmt}, {layout} ({connection.vendor}): {seconds:,.1f} s, "
        f"cpu {cpu:,.1f} s, peak {peak_mb:,.0f} MB, file {size_mb:,.0f} MB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=SIZE)
    parser.add_argument("--formats", nargs="+", default=["parquet", "jsonl"])
    parser.add_argument("--layouts", nargs="+", default=["generic", "flat"])
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child[0] == "seed":
            print(seed(int(args.child[1])))
        else:
            n, audit_id, fmt, out, layout = args.child[1:6]
            export(int(n), int(audit_id), fmt, Path(out), layout)
        return

    sys.path.insert(0, str(ROOT))
    from bench.benchdb import bench_database, postgres_url

    with (
        tempfile.TemporaryDirectory(prefix="tribunal-bench-export-") as tmp,
        bench_database(tmp, BENCH_DB, postgres=postgres_url()) as env,
    ):
        me = [sys.executable, __file__, "--child"]
        seeded = subprocess.run(
            [*me, "seed", str(args.size)], env=env, check=True, capture_output=True, text=True
        )
        audit_id = seeded.stdout.strip().splitlines()[-1]
        for fmt in args.formats:
            for layout in args.layouts:
                out = Path(tmp) / f"calibration-{layout}.{fmt}"
                subprocess.run(
                    [*me, "export", str(args.size), audit_id, fmt, str(out), layout],
                    env=env,
                    check=True,
                )


if __name__ == "__main__":
    main()
