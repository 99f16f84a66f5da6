"""Snapshot speed and memory, and the time from a submitted label to the updated figures.

    python bench/analysis_bench.py                 # PostgreSQL if reachable, else SQLite
    python bench/analysis_bench.py --sqlite        # force SQLite (a temporary file)
    python bench/analysis_bench.py --only-audit --pairs 1000 --baseline ../baseline
                                     # the audit snapshot only, side by side with other code
    BENCH_PG_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/analysis_bench.py

Never touches your data: it creates and drops a ``tribunal_bench_analysis`` database on the
PostgreSQL server (or uses a temporary SQLite file), migrates it and generates, seeded:

* a 300-item audit: 3 annotators label every item, 3 judges (one run in both orders), four
  strata, categories, model pairs and refusal classes, a few adjudications;
* a dataset of 50,000 pairs (25,000 prompts) with 3 imported human votes and 3 judges'
  verdicts on every pair.

It times ``analysis.services.snapshot_compute`` (every figure, 1,000 bootstrap resamples of
prompts) on each, in a fresh process so that the peak memory (ru_maxrss) is that snapshot's,
three times with new seeds (nothing reused from the bootstrap cache); it prints the best wall
time, the median and the CPU time, with the load average, since a shared machine skews wall
times.
Then, with a worker running - a Celery worker on Redis (127.0.0.1:6379, database 14) when
Redis and PostgreSQL are available, otherwise the in-process thread used by the web demo - it
submits labels through ``annotation.queue``, each after a quiet ``TRIBUNAL_SNAPSHOT_INTERVAL``,
and measures the time from the label's commit to the new snapshot in the database. Prints one
figure per line.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = os.environ.get("BENCH_DB", "tribunal_bench_analysis")  # concurrent runs: set one each
SEED = 20240611
AUDIT_ITEMS = 300
DATASET_PAIRS = 50_000
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
RUNS = 3
MODELS = [
    "gpt-4-0613",
    "claude-2.1",
    "llama-2-70b-chat",
    "mixtral-8x7b-instruct",
    "vicuna-33b",
    "gemini-pro",
    "mistral-medium",
    "gpt-3.5-turbo",
]
CATEGORIES = ["writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "law"]
CLASSES = ["normal"] * 16 + [
    "ethical_refusal",
    "ethical_disclaimer",
    "technical_refusal",
    "technical_disclaimer",
]
STRATA = ["low_margin", "ethics_refusal", "technical_refusal", "random"]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


# --- data ------------------------------------------------------------------------------------


def _pairs(dataset: object, n_pairs: int, rng: object) -> list[object]:
    """n_pairs pairs over n_pairs / 2 prompts, each response with a refusal class."""
    from bench.benchrows import pair_of
    from corpus.models import Pair, Prompt, Response
    from judges.models import ResponseClassification

    prompts = Prompt.objects.bulk_create(
        [
            Prompt(
                dataset=dataset,
                text=f"Question {i}?",
                content_hash=f"{dataset.pk}-p{i}",  # type: ignore[attr-defined]
                category=CATEGORIES[i % len(CATEGORIES)],
            )
            for i in range(n_pairs // 2)
        ],
        batch_size=5000,
    )
    responses: list[Response] = []
    sides: list[tuple[int, int, str, str]] = []
    for i in range(n_pairs):
        prompt = prompts[i // 2]
        model_a, model_b = rng.sample(MODELS, 2)  # type: ignore[attr-defined]
        responses += [
            Response(prompt=prompt, model_name=model_a, text=f"a{i}", content_hash=f"a{i}"),
            Response(prompt=prompt, model_name=model_b, text=f"b{i}", content_hash=f"b{i}"),
        ]
        sides.append((i // 2, i, model_a, model_b))
    responses = Response.objects.bulk_create(responses, batch_size=5000)
    ResponseClassification.objects.bulk_create(
        [
            ResponseClassification(
                response=r,
                classifier="bench-classifier",
                label=rng.choice(CLASSES),  # type: ignore[attr-defined]
                score=0.9,
            )
            for r in responses
        ],
        batch_size=5000,
    )
    return Pair.objects.bulk_create(
        [
            pair_of(
                responses,
                i,
                dataset=dataset,
                source_key=f"pair-{i}",
                prompt=prompts[p],
                category=prompts[p].category,
                content_hash=f"pair-{i}",
            )
            for p, i, _, _ in sides
        ],
        batch_size=5000,
    )


def _noisy(truth: str, accuracy: float, rng: object) -> str:
    if rng.random() < accuracy:  # type: ignore[attr-defined]
        return truth
    return rng.choice(["A", "B", "tie"])  # type: ignore[attr-defined]


def _truth(rng: object) -> str:
    return rng.choices(["A", "B", "tie"], weights=[45, 45, 10])[0]  # type: ignore[attr-defined]


def _verdicts(judges: list[object], pairs: list[object], truths: list[str], rng: object) -> None:
    from analysis.metrics import combine_orders
    from judges.models import Verdict

    rows = []
    for j, judge in enumerate(judges):
        accuracy = (0.78, 0.72, 0.66)[j]
        for pair, truth in zip(pairs, truths, strict=True):
            ab = _noisy(truth, accuracy, rng)
            if j == 0:  # both orders, with position flips
                ba = ab if rng.random() < 0.85 else _noisy(truth, 0.3, rng)  # type: ignore[attr-defined]
                outcome = str(combine_orders([ab], [ba])[0])
                rows.append(
                    Verdict(
                        judge=judge,
                        pair=pair,
                        outcome=outcome,
                        outcome_ab=ab,
                        outcome_ba=ba,
                        consistent=ab == ba,
                        status_ab="ok",
                        status_ba="ok",
                    )
                )
            else:
                rows.append(
                    Verdict(judge=judge, pair=pair, outcome=ab, outcome_ab=ab, status_ab="ok")
                )
    Verdict.objects.bulk_create(rows, batch_size=5000)


def generate(dataset_pairs: int = DATASET_PAIRS) -> None:
    _setup_django()
    import random

    from django.contrib.auth.models import User
    from django.db import connection
    from django.utils import timezone

    from annotation.models import Adjudication, Assignment, Audit, AuditItem, Label
    from bench.benchrows import imported_judge, submitted_assignment
    from config.roles import ensure_groups
    from corpus.models import Dataset, HumanVote

    rng = random.Random(SEED)
    started = time.perf_counter()
    lead_group, annotator_group = ensure_groups()
    lead = User.objects.create(username="bench-lead")
    lead.groups.add(lead_group)
    annotators = [User.objects.create(username=f"bench-annotator-{k}") for k in range(4)]
    for user in annotators:
        user.groups.add(annotator_group)
    judges = [
        imported_judge(
            name=f"bench judge {k}",
            model_id=f"judge-model-{k}",
            fingerprint=f"bench-judge-{k}",
            swap_policy="both" if k == 0 else "ab_only",
        )
        for k in range(3)
    ]

    # The audit: 300 of 600 pairs; annotators 0-2 label everything, annotator 3 is the one
    # whose labels the latency run submits (k = 4 leaves room for them).
    pool = Dataset.objects.create(name="bench-audit-pool")
    pairs = _pairs(pool, 2 * AUDIT_ITEMS, rng)
    truths = [_truth(rng) for _ in pairs]
    _verdicts(judges, pairs, truths, rng)
    audit = Audit.objects.create(
        name="bench-audit", dataset=pool, created_by=lead, target_size=AUDIT_ITEMS, overlap_k=4
    )
    audit.judges.set(judges)
    audit.annotators.set(annotators)
    chosen = rng.sample(range(len(pairs)), AUDIT_ITEMS)
    items = AuditItem.objects.bulk_create(
        [
            AuditItem(
                audit=audit,
                pair=pairs[i],
                stratum=STRATA[position % 4],
                inclusion_probability=0.5,
                position=position,
                label_count=3,
            )
            for position, i in enumerate(chosen)
        ]
    )
    now = timezone.now()
    assignments = Assignment.objects.bulk_create(
        [
            submitted_assignment(item, user, rng=rng, now=now)
            for item in items
            for user in annotators[:3]
        ]
    )
    labels = []
    for index, assignment in enumerate(assignments):  # three per item, in item order
        outcome = _noisy(truths[chosen[index // 3]], 0.8, rng)
        left = "A" if assignment.a_on_left else "B"
        labels.append(
            Label(
                item=assignment.item,
                assignment=assignment,
                annotator=assignment.annotator,
                outcome=outcome,
                chose_left=None if outcome == "tie" else outcome == left,
                submission_key=uuid.UUID(int=rng.getrandbits(128)),
            )
        )
    Label.objects.bulk_create(labels, batch_size=5000)
    Adjudication.objects.bulk_create(
        [Adjudication(item=item, lead=lead, outcome=_truth(rng)) for item in items[:10]]
    )

    # The large dataset: 50,000 pairs, 3 imported votes and 3 judges' verdicts on each.
    big = Dataset.objects.create(name="bench-pairs")
    pairs = _pairs(big, dataset_pairs, rng)
    truths = [_truth(rng) for _ in pairs]
    HumanVote.objects.bulk_create(
        [
            HumanVote(
                pair=pair,
                source="generic",
                voter_id=f"rater-{k}",
                outcome=_noisy(truth, 0.8, rng),
                row_hash=f"{pair.pk}-{k}",
            )
            for pair, truth in zip(pairs, truths, strict=True)
            for k in range(3)
        ],
        batch_size=5000,
    )
    _verdicts(judges, pairs, truths, rng)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # planner statistics, as autovacuum would gather them
    print(
        f"(generated {AUDIT_ITEMS} audit items and {dataset_pairs:,} pairs in "
        f"{time.perf_counter() - started:.0f} s)",
        flush=True,
    )


# --- measurements ------------------------------------------------------------------------------


def measure_snapshot(which: str, dataset_pairs: int = DATASET_PAIRS) -> None:
    _setup_django()
    from django.db import connection

    from analysis import services
    from annotation.models import Audit
    from corpus.models import Dataset

    audit = Audit.objects.get(name="bench-audit")
    services.snapshot_compute(audit=audit, n_boot=10)  # warm-up: imports, caches, plans
    try:  # as a worker process does once set up (code without it: nothing)
        from config.celery import startup_objects_freeze
    except ImportError:
        pass
    else:
        startup_objects_freeze()
    subject = (
        {"audit": audit}
        if which == "audit"
        else {"dataset": Dataset.objects.get(name="bench-pairs")}
    )
    load = os.getloadavg()[0]
    walls, cpus = [], []
    for run in range(RUNS):  # a new seed each run: no replicate is reused from a cache
        cpu = time.process_time()
        started = time.perf_counter()
        snapshot = services.snapshot_compute(n_boot=1000, seed=run + 1, **subject)
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    if which == "audit":
        what = (
            f"snapshot {AUDIT_ITEMS} items ({snapshot.label_count:,} labels from 3 annotators, "
            f"3 judges), 1,000 resamples"
        )
    else:
        what = (
            f"snapshot {dataset_pairs:,} pairs ({snapshot.label_count:,} human votes, "
            f"3 judges), 1,000 resamples"
        )
    print(
        f"{what} ({connection.vendor}): {min(walls):.2f} s best of {RUNS} "
        f"(median {statistics.median(walls):.2f} s, CPU {min(cpus):.2f} s), "
        f"peak {_peak_mb():,.0f} MB; load average {load:.1f} on {os.cpu_count()} cores",
        flush=True,
    )
    _measure_typed_read(snapshot.pk)


def _measure_typed_read(pk: int) -> None:
    """How long reading a stored snapshot as its typed model takes (what every report page,
    command and API call does once per snapshot); skipped by code without the typed model."""
    import json

    from analysis.models import MetricSnapshot

    try:
        from analysis.snapshot import counts_parse, metrics_parse
    except ImportError:
        return
    stored = MetricSnapshot.objects.get(pk=pk)
    times = []
    for _ in range(20):
        started = time.perf_counter()
        metrics_parse(stored.metrics)
        counts_parse(stored.counts)
        times.append(time.perf_counter() - started)
    size = len(json.dumps(stored.metrics))
    print(
        f"  read as the typed snapshot (analysis.snapshot, {size / 1024:,.0f} kB of JSON): "
        f"{1000 * min(times):.1f} ms best of 20 (median {1000 * statistics.median(times):.1f} ms)",
        flush=True,
    )


def measure_latency(mode: str, labels: int) -> None:
    _setup_django()
    import random

    from django.conf import settings
    from django.contrib.auth.models import User

    from analysis import services
    from analysis.models import MetricSnapshot
    from annotation import queue
    from annotation.models import Audit

    rng = random.Random(SEED)
    audit = Audit.objects.get(name="bench-audit")
    user = User.objects.get(username="bench-annotator-3")
    services.snapshot_compute(audit=audit)  # the figures before the first new label

    def submit() -> float:
        assignment = queue.queue_next(audit=audit, annotator=user)
        assert assignment is not None, "the audit ran out of items"
        queue.label_submit(
            assignment=assignment,
            choice=rng.choice(["left", "right", "tie"]),
            submission_key=uuid.uuid4(),
        )
        committed = time.perf_counter()
        services.snapshot_request(audit=audit)  # what the workspace does after the commit
        return committed

    def wait_for(label_count: int, timeout: float = 60.0) -> float:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if MetricSnapshot.objects.filter(audit=audit, label_count__gte=label_count).exists():
                return time.perf_counter()
            time.sleep(0.01)
        raise SystemExit(f"no snapshot with {label_count} labels after {timeout:.0f} s")

    # A subject gets at most one snapshot per TRIBUNAL_SNAPSHOT_INTERVAL (code without the
    # setting: none): a label within the interval after the last snapshot waits for its end by
    # design (the burst below shows it). Each timed label comes after a quiet interval.
    interval = float(getattr(settings, "TRIBUNAL_SNAPSHOT_INTERVAL", 0.0))
    count = MetricSnapshot.objects.filter(audit=audit).latest("created_at").label_count
    latencies = []
    for _ in range(labels):
        time.sleep(max(interval, 0.2))
        committed = submit()
        count += 1
        latencies.append(wait_for(count) - committed)
    print(
        f"label to updated snapshot, {AUDIT_ITEMS}-item audit ({mode}): median "
        f"{statistics.median(latencies):.2f} s, max {max(latencies):.2f} s over {labels} labels, "
        f"each {max(interval, 0.2):g} s after the last snapshot "
        f"(load average {os.getloadavg()[0]:.1f})",
        flush=True,
    )

    before = MetricSnapshot.objects.filter(audit=audit).count()
    first = None
    for _ in range(10):
        committed = submit()
        first = first or committed
        count += 1
    last = committed
    done = wait_for(count)
    time.sleep(3.0)  # let any straggling run finish before counting
    runs = MetricSnapshot.objects.filter(audit=audit).count() - before
    print(
        f"burst of 10 labels in {last - first:.2f} s ({mode}): {runs} recomputation(s), "
        f"last label to updated snapshot {done - last:.2f} s",
        flush=True,
    )


# --- orchestration -----------------------------------------------------------------------------


def _postgres_url(base: str) -> str | None:
    try:
        import psycopg

        with psycopg.connect(base, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME}")
            conn.execute(f"CREATE DATABASE {DB_NAME}")
    except Exception as exc:  # no server, no rights: fall back to SQLite
        print(f"(PostgreSQL at {base} not usable: {exc}; using SQLite)", flush=True)
        return None
    return urlunsplit(urlsplit(base)._replace(path="/" + DB_NAME))


def _drop_postgres(base: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


def _redis_ready() -> bool:
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.flushdb()  # database 14 is the bench's own broker queue
    except Exception:
        return False
    return True


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = open(log, "wb")  # noqa: SIM115 - closed with the worker
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "config",
            "worker",
            "--loglevel=info",
            "--concurrency=2",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        if b"ready." in log.read_bytes():
            return worker
        if worker.poll() is not None:
            break
        time.sleep(0.5)
    raise SystemExit(f"the Celery worker did not start; see {log}")


def _run(args: list[str], env: dict[str, str], root: Path = ROOT) -> None:
    """This script's ``--child`` step, with the code of ``root`` (another checkout's copy)."""
    script = root / "bench" / Path(__file__).name
    subprocess.run([sys.executable, str(script), *args], env=env, check=True, cwd=root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqlite", action="store_true", help="use SQLite even if PostgreSQL works")
    parser.add_argument("--labels", type=int, default=10, help="labels timed one by one")
    parser.add_argument(
        "--pairs", type=int, default=DATASET_PAIRS, help="pairs in the large dataset"
    )
    parser.add_argument(
        "--only-audit", action="store_true", help="time the 300-item audit snapshot only"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="also time the snapshots with the code of another checkout (e.g. a git worktree "
        "of the commit before a change), alternating with this tree's, on the same data",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step, *rest = args.child
        if step == "generate":
            generate(int(rest[0]))
        elif step == "snapshot":
            measure_snapshot(rest[0], int(rest[1]))
        else:
            measure_latency(rest[0], int(rest[1]))
        return

    base = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    with tempfile.TemporaryDirectory(prefix="tribunal-analysis-bench-") as tmp:
        url = None if args.sqlite else _postgres_url(base)
        env = {
            **os.environ,
            "TRIBUNAL_VAR_DIR": tmp,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": url or f"sqlite:///{tmp}/bench.sqlite3",
            "LOG_LEVEL": "WARNING",
        }
        env.pop("CELERY_BROKER_URL", None)
        worker = None
        try:
            subprocess.run(
                [sys.executable, str(ROOT / "manage.py"), "migrate", "-v", "0"],
                env=env,
                check=True,
                cwd=ROOT,
            )
            _run(["--child", "generate", str(args.pairs)], env)
            for which in ("audit",) if args.only_audit else ("audit", "dataset"):
                for _ in range(2 if args.baseline else 1):
                    if args.baseline:
                        print(f"code of {args.baseline}:", flush=True)
                        _run(["--child", "snapshot", which, str(args.pairs)], env, args.baseline)
                        print(f"code of {ROOT}:", flush=True)
                    _run(["--child", "snapshot", which, str(args.pairs)], env)
            if args.only_audit:
                return
            if url and _redis_ready():
                celery_env = {**env, "CELERY_BROKER_URL": REDIS_URL}
                worker = _start_worker(celery_env, Path(tmp) / "worker.log")
                _run(["--child", "latency", "Celery worker, Redis", str(args.labels)], celery_env)
            else:
                thread_env = {**env, "TRIBUNAL_TASKS_INLINE": "0"}
                _run(["--child", "latency", "in-process thread", str(args.labels)], thread_env)
        finally:
            if worker is not None:
                os.killpg(worker.pid, signal.SIGTERM)  # the worker's own process group
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.pid, signal.SIGKILL)
            if url:
                _drop_postgres(base)


if __name__ == "__main__":
    main()
