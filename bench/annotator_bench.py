"""Server-side latency of "submit a label and get the next item" on PostgreSQL.

    python bench/annotator_bench.py                      # 100,000 pairs, 1 and 16 annotators
    python bench/annotator_bench.py --pairs 20000 --audit-size 1000
    python bench/annotator_bench.py --mode next          # serving: SQL and ORM side by side

Creates a throwaway database (tribunal_bench_annot) on BENCH_PG_URL (default
postgres://postgres@127.0.0.1:5432/postgres), migrates it, loads the pairs with COPY (prompts,
two responses each, two judges' verdicts, refusal classes), builds audits with the real
stratified builder, then times two in-process paths, each annotator in its own thread with its
own database connection:

* services: annotation.queue.label_submit_and_next (the label and the next hold in one
  transaction), the work itself;
* bare: for comparison on the same machine at the same moment, a plain psycopg
  SELECT ... FOR UPDATE SKIP LOCKED + UPDATE + COMMIT loop over the same index;
* http: Django's test Client POSTing the workspace form as htmx does (middleware, session,
  auth, the view, markdown rendering, the next-item fragment) - what a web worker spends on
  one request, minus the network and the WSGI server;
* next: serving alone, timed two ways on audits built alike in the same run: queue_next (the
  SQL statements) and queue_next_orm (the same rule written with the ORM, the readable
  reference); each served item is then labelled, untimed. The figures behind the docstring
  of annotation.queue._candidate_step.

The first few requests of each annotator are warm-up (connection, template and plan caches)
and are not counted. The database (BENCH_DB, default tribunal_bench_annot: give each
concurrent run its own) is dropped at the end unless --keep is given.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_NAME = os.environ.get("BENCH_DB", "tribunal_bench_annot")
WARMUP = 10

RESPONSE_TEMPLATE = (
    "Here is one way to do it (variant {n}):\n\n"
    "1. Read the input carefully.\n2. Handle the empty case first.\n3. Return early.\n\n"
    "```python\ndef solve(items):\n    if not items:\n        return []\n"
    "    return sorted(items, key=lambda x: (x[{k}], x))\n```\n\n"
    "This runs in **O(n log n)** time. {filler}"
)
FILLER = "The approach is simple, and it is easy to test with a few small examples. " * 4


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def _create_database(base_url: str) -> str:
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    return base_url.rsplit("/", 1)[0] + "/" + DB_NAME


def _drop_database(base_url: str) -> None:
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def _copy(cursor: Any, model: Any, columns: list[str], rows: Any) -> None:
    """COPY rows into a model's table; columns not given get the field's default, so the bench
    keeps working when other apps add fields with defaults."""
    from django.db import models
    from django.utils import timezone

    given = set(columns)
    extra_columns, extra_values = [], []
    for field in model._meta.concrete_fields:
        if field.column in given:
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            value: Any = timezone.now()
        else:
            value = field.get_default()  # "" for text fields without a default
            if value is None and not field.null:
                raise SystemExit(f"bench: {model.__name__}.{field.name} needs a value")
        if isinstance(field, models.JSONField) and value is not None:
            value = json.dumps(value)
        extra_columns.append(field.column)
        extra_values.append(value)
    names = ", ".join([*columns, *extra_columns])
    with cursor.copy(f"COPY {model._meta.db_table} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row((*row, *extra_values))


def _fill(n_pairs: int) -> tuple[Any, list[Any]]:
    """COPY n prompts, 2n responses, n pairs, 2n verdicts and some refusal classes."""
    from django.core.management.color import no_style
    from django.db import connection

    from bench.benchrows import imported_judge
    from corpus.models import Dataset, Pair, Prompt, Response
    from judges.models import ResponseClassification, Verdict

    dataset = Dataset.objects.create(name="bench", description="annotator bench")
    judges = [
        imported_judge(name=f"bench-judge-{i}", model_id=f"model-{i}", fingerprint=f"{i:064d}")
        for i in range(2)
    ]
    n = n_pairs

    def responses() -> Any:
        for i in range(1, n + 1):
            for side in (0, 1):
                text = RESPONSE_TEMPLATE.format(
                    n=i * 2 + side, k=side, filler=FILLER[: 80 + (i % 5) * 40]
                )
                yield (2 * i - 1 + side, i, f"model-{side}", text, True, f"r{2 * i + side:063d}")

    def verdicts() -> Any:
        vid = 0
        for i in range(1, n + 1):
            for j, judge in enumerate(judges):
                vid += 1
                outcome = "A" if (i + j * (i % 11 == 0)) % 2 else "B"
                margin = ((i * 37 + j * 11) % 100) / 10 - 5  # -5.0 .. 4.9
                yield (vid, judge.pk, i, outcome, i % 13 != 0, margin, outcome, outcome, "ok", "ok")

    def classes() -> Any:
        for i in range(1, n + 1):
            label = (
                "ethical_refusal"
                if i % 20 == 0
                else "technical_refusal"
                if i % 33 == 0
                else "normal"
            )
            yield (i, 2 * i, "bench-classifier", label, 0.9)

    with connection.cursor() as cursor:
        _copy(
            cursor,
            Prompt,
            ["id", "dataset_id", "text", "content_hash", "source_key", "category"],
            (
                (
                    i,
                    dataset.pk,
                    f"Question {i}: how do I sort a list of records by field "
                    f"{i % 7} and keep ties stable?",
                    f"p{i:063d}",
                    f"p{i}",
                    "coding",
                )
                for i in range(1, n + 1)
            ),
        )
        _copy(
            cursor,
            Response,
            ["id", "prompt_id", "model_name", "text", "has_text", "content_hash"],
            responses(),
        )
        _copy(
            cursor,
            Pair,
            [
                "id",
                "dataset_id",
                "source_key",
                "prompt_id",
                "response_a_id",
                "response_b_id",
                "turn",
                "category",
                "content_hash",
            ],
            (
                (i, dataset.pk, f"pair-{i:07d}", i, 2 * i - 1, 2 * i, 1, "coding", f"h{i:063d}")
                for i in range(1, n + 1)
            ),
        )
        _copy(
            cursor,
            Verdict,
            [
                "id",
                "judge_id",
                "pair_id",
                "outcome",
                "consistent",
                "margin",
                "outcome_ab",
                "outcome_ba",
                "status_ab",
                "status_ba",
            ],
            verdicts(),
        )
        _copy(
            cursor,
            ResponseClassification,
            ["id", "response_id", "classifier", "label", "score"],
            classes(),
        )
        for statement in connection.ops.sequence_reset_sql(
            no_style(), [Prompt, Response, Pair, Verdict, ResponseClassification]
        ):
            cursor.execute(statement)
        cursor.execute("ANALYZE")
    return dataset, judges


def _build_audit(
    dataset: Any,
    judges: list[Any],
    lead: Any,
    people: list[Any],
    size: int,
    k: int,
    seed: int,
    policy: str = "complete_first",
) -> tuple[Any, float]:
    from annotation import services

    quotas = {
        "ethics_refusal": size // 10,
        "technical_refusal": size // 20,
        "low_margin": size * 2 // 5,
    }
    started = time.perf_counter()
    audit = services.audit_build(
        name=f"bench {seed}",
        dataset=dataset,
        judges=judges,
        size=size,
        overlap_k=k,
        quotas=quotas,
        thresholds={"margin": 0.5},
        seed=seed,
        created_by=lead,
        annotators=people,
        queue_policy=policy,
    )
    return audit, time.perf_counter() - started


class _Samples:
    """One runner's timings: each `timed()` block is one sample, the first WARMUP left out."""

    def __init__(self, out: list[float]) -> None:
        self.out = out
        self.done = 0

    @contextmanager
    def timed(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        elapsed = time.perf_counter() - started
        self.done += 1
        if self.done > WARMUP:
            self.out.append(elapsed)


def _run_services(
    audit: Any, person: Any, limit: int, out: list[float], barrier: threading.Barrier
) -> None:
    from django.db import connections

    from annotation import queue

    try:
        assignment = queue.queue_next(audit=audit, annotator=person)
        barrier.wait()
        samples = _Samples(out)
        while assignment is not None and samples.done < limit:
            with samples.timed():
                _, assignment = queue.label_submit_and_next(
                    assignment=assignment,
                    choice=("left", "right", "tie")[samples.done % 3],
                    submission_key=uuid.uuid4(),
                    time_spent_ms=5000,
                )
    finally:
        connections.close_all()


def _run_next(
    audit: Any,
    person: Any,
    limit: int,
    out: list[float],
    barrier: threading.Barrier,
    *,
    orm: bool,
) -> None:
    """Serve (timed) and label (untimed) until `limit`: queue_next, or its ORM reference."""
    from django.db import connections

    from annotation import queue

    serve = queue.queue_next_orm if orm else queue.queue_next
    try:
        barrier.wait()
        done = 0
        while done < limit + WARMUP:
            started = time.perf_counter()
            assignment = serve(audit=audit, annotator=person)
            elapsed = time.perf_counter() - started
            if assignment is None:
                break
            queue.label_submit(
                assignment=assignment,
                choice=("left", "right", "tie")[done % 3],
                submission_key=uuid.uuid4(),
                time_spent_ms=5000,
            )
            done += 1
            if done > WARMUP:
                out.append(elapsed)
    finally:
        connections.close_all()


RUNNERS: dict[str, Any] = {}  # filled below, once every runner is defined

_FORM = re.compile(r'hx-post="(/audits/\d+/label/\d+/)"')
_KEY = re.compile(r'name="submission_key" value="([0-9a-f-]{36})"')


def _run_http(
    audit: Any, person: Any, limit: int, out: list[float], barrier: threading.Barrier
) -> None:
    from django.db import connections
    from django.test import Client

    try:
        client = Client()
        client.force_login(person)
        html = client.get(f"/audits/{audit.pk}/label/").content.decode()
        barrier.wait()
        samples = _Samples(out)
        while samples.done < limit:
            form, key = _FORM.search(html), _KEY.search(html)
            if not form or not key:
                break  # nothing left for this annotator
            with samples.timed():
                response = client.post(
                    form.group(1),
                    {
                        "choice": ("left", "right", "tie")[samples.done % 3],
                        "submission_key": key.group(1),
                        "time_spent_ms": "5000",
                        "rationale": "",
                    },
                    headers={"HX-Request": "true"},
                )
                html = response.content.decode()
            if response.status_code != 200 or "Label saved." not in html:
                raise RuntimeError(f"unexpected response {response.status_code}")
    finally:
        connections.close_all()


def _run_bare(
    audit: Any, person: Any, limit: int, out: list[float], barrier: threading.Barrier
) -> None:
    """The floor: a plain psycopg SELECT ... FOR UPDATE SKIP LOCKED + UPDATE + COMMIT loop on
    the same table and index, with none of the bookkeeping (no label row, no hold, no texts)."""
    import psycopg

    table = audit.items.model._meta.db_table
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        barrier.wait()
        for done in range(limit + WARMUP):
            started = time.perf_counter()
            row = conn.execute(
                f"SELECT id FROM {table} WHERE audit_id = %s AND label_count < %s"
                " ORDER BY label_count, position LIMIT 1 FOR UPDATE SKIP LOCKED",
                (audit.pk, audit.overlap_k),
            ).fetchone()
            if row is None:
                conn.rollback()
                break
            conn.execute(
                f"UPDATE {table} SET label_count = label_count + 1 WHERE id = %s", (row[0],)
            )
            conn.commit()
            elapsed = time.perf_counter() - started
            if done >= WARMUP:
                out.append(elapsed)


RUNNERS.update(
    {
        "bare": _run_bare,
        "services": _run_services,
        "http": _run_http,
        "next-sql": functools.partial(_run_next, orm=False),
        "next-orm": functools.partial(_run_next, orm=True),
    }
)
LABELS = {
    "bare": "submit+next (bare psycopg SKIP LOCKED loop, for comparison)",
    "services": "submit+next (services)",
    "http": "submit+next (HTTP view via test client)",
    "next-sql": "serve next (queue_next: SQL)",
    "next-orm": "serve next (queue_next_orm: the ORM reference)",
}


def _measure_processes(mode: str, audit: Any, people: list[Any], limit: int) -> list[float]:
    """One forked process per annotator (as a web server's worker processes would be): no
    shared interpreter lock between them, each with its own database connection."""
    import multiprocessing

    from django.db import connections

    runner = RUNNERS[mode]
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(len(people))
    results = context.Queue()
    connections.close_all()  # children must not share the parent's socket

    def target(index: int) -> None:
        out: list[float] = []
        try:
            runner(audit, people[index], limit, out, barrier)  # type: ignore[arg-type]
            results.put(("ok", out))
        except BaseException as exc:
            results.put(("error", repr(exc)))

    children = [context.Process(target=target, args=(i,)) for i in range(len(people))]
    for child in children:
        child.start()
    collected: list[float] = []
    for _ in children:
        status, payload = results.get()
        if status != "ok":
            raise RuntimeError(payload)
        collected.extend(payload)
    for child in children:
        child.join()
    return sorted(collected)


def _measure(mode: str, audit: Any, people: list[Any], limit: int) -> list[float]:
    runner = RUNNERS[mode]
    results: list[list[float]] = [[] for _ in people]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(people))

    def target(index: int) -> None:
        try:
            runner(audit, people[index], limit, results[index], barrier)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(len(people))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return sorted(x for per in results for x in per)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--audit-size", type=int, default=2_000)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--annotators", default="1,16", help="comma-separated thread counts")
    parser.add_argument(
        "--mode",
        choices=["bare", "services", "http", "next", "all"],
        default="all",
        help="bare: plain psycopg SKIP LOCKED loop (the floor); services; http; next: serving "
        "with SQL and with the ORM reference, side by side; all of them",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=600,
        help="timed requests per annotator at most (after warm-up)",
    )
    parser.add_argument(
        "--workers",
        choices=["threads", "processes", "both"],
        default="threads",
        help="annotators as threads of this process (default) or as forked processes",
    )
    parser.add_argument(
        "--policy",
        choices=["complete_first", "spread_first"],
        default="complete_first",
        help="the audits' serving order (complete_first is the default for new audits)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument(
        "--snapshots",
        choices=["off", "thread"],
        default="off",
        help="report recomputation after labels: off (default: it is a Celery worker's job, "
        "timed by bench/analysis_bench.py) or in a thread of this process, sharing its CPU "
        "and its interpreter lock with the annotators",
    )
    args = parser.parse_args()

    base_url = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    os.environ["DATABASE_URL"] = _create_database(base_url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["DEBUG"] = "0"
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connections

    settings.LOGGING_CONFIG = None
    if args.snapshots == "off":
        from analysis import snapshot_requests

        snapshot_requests.snapshot_request = lambda **kwargs: None  # type: ignore[assignment]
        print("report recomputation after labels: off (a worker's job; see analysis_bench.py)")
    try:
        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        dataset, judges = _fill(args.pairs)
        seconds = time.perf_counter() - started
        print(f"load {args.pairs:,} pairs (COPY, with 2 judges' verdicts): {seconds:.1f} s")
        print(f"serving order of the audits: {args.policy}")

        User = get_user_model()
        lead = User.objects.create(username="bench-lead", is_superuser=True)
        most = max(int(n) for n in args.annotators.split(","))
        people = [User.objects.create(username=f"bench-{i:02d}") for i in range(most)]
        modes = {
            "all": ["bare", "services", "http", "next-sql", "next-orm"],
            "next": ["next-sql", "next-orm"],
        }.get(args.mode, [args.mode])
        workers = ["threads", "processes"] if args.workers == "both" else [args.workers]
        plan = [
            (count, mode, worker)
            for worker in workers
            for count in (int(n) for n in args.annotators.split(","))
            for mode in modes
            if not (worker == "processes" and count == 1)  # one annotator: nothing to share
        ]
        for seed, (count, mode, worker) in enumerate(plan, start=1):
            audit, build_s = _build_audit(
                dataset,
                judges,
                lead,
                people[:count],
                args.audit_size,
                min(args.k, count),
                seed,
                args.policy,
            )
            if seed == 1:
                print(
                    f"audit_build {args.audit_size:,} items from {args.pairs:,} pairs: "
                    f"{build_s * 1000:,.0f} ms"
                )
            connections.close_all()
            started = time.perf_counter()
            measure = _measure_processes if worker == "processes" else _measure
            latencies = measure(mode, audit, people[:count], args.requests)
            wall = time.perf_counter() - started
            ms = [x * 1000 for x in latencies]
            who = "annotator" if count == 1 else "annotators"
            if worker == "processes":
                who += " (one process each)"
            print(
                f"{LABELS[mode]} {count} {who}, {args.pairs:,} pairs: "
                f"p50 {_percentile(ms, 50):.1f} ms, p95 {_percentile(ms, 95):.1f} ms, "
                f"p99 {_percentile(ms, 99):.1f} ms, mean {statistics.fmean(ms):.1f} ms "
                f"({len(ms):,} timed requests, {len(ms) / wall:,.0f} requests/s, "
                f"machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
            )
    finally:
        for thread in threading.enumerate():  # in-process report runs still going
            if thread.name.startswith("snapshot-"):
                thread.join(timeout=120)
        connections.close_all()
        if not args.keep:
            _drop_database(base_url)


if __name__ == "__main__":
    main()
