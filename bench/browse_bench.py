"""Pair browser speed at 100,000 pairs: search, filters and paging through the real view.

    python bench/browse_bench.py                      # SQLite (a temporary file)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tribunal python bench/browse_bench.py
    python bench/browse_bench.py --engines sqlite postgresql --pairs 100000

Never touches your data: on PostgreSQL it creates and drops a `tribunal_browse_bench`
database on the server DATABASE_URL names; on SQLite it uses a temporary file. The data is
seeded (the same every run): 100,000 pairs of about 1 KB of text in 10 categories and 12
models, two judges with a verdict on every pair (10% flip when swapped), one to three people's
votes per pair, a refusal class for every response, and planted words: "volcano" in about 30%
of prompts, "zeppelin" in about 0.1% of responses, the phrase "tension wrench" in about 1%.

Each query kind is requested through the view with the Django test client as htmx does on
each keystroke or filter change (`HX-Request`: the results fragment), 5 times to warm up,
then 40 times; it prints p50 and p95 of the wall time in ms, and the p50 of the CPU time the
benchmark's process spent (Django, the template, and on SQLite the database): on a machine
shared with other work the wall time includes waiting for a core, the CPU time does not.
The floor beside it is the same SQL the view ran
(every statement of one request, captured), replayed on a raw driver connection (psycopg,
sqlite3) with no Django, ORM or template: what the database alone costs.
One line per query kind, e.g.
`browse 100,000 pairs (postgresql), search rare word: p50 4.2 ms, p95 5.0 ms (floor: SQL
alone p50 1.1 ms, 5 statements)`.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "tribunal_browse_bench"
SEED = 20261207
WARM, RUNS = 5, 40
CATEGORIES = [f"category-{i}" for i in range(10)]
MODELS = [f"model-{i:02d}" for i in range(12)]
CLASSES = [
    ("normal", 0.86),
    ("ethical_refusal", 0.06),
    ("ethical_disclaimer", 0.03),
    ("technical_refusal", 0.03),
    ("technical_disclaimer", 0.02),
]
WORDS = re.findall(
    r"\w+",
    """
the a model answer question because however therefore example code function value data result
first second step explain consider important note python list return user system response
option case error test number string table time which would should could people world language
write simple more most also only other river mountain garden letter music history energy planet
market health travel kitchen window engine forest ocean
""",
)


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choices(WORDS, k=words)).capitalize() + "."


def _with_ids(table: Any, model: Any, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [(pk, *row) for pk, row in zip(table.allocate(model, len(rows)), rows, strict=True)]


def build(n: int) -> dict[str, Any]:
    """n pairs and everything the filters read, written with the importers' TableWriter
    (COPY on PostgreSQL); the search index fills through its triggers."""
    from django.contrib.auth.models import User
    from django.db import connection, transaction
    from django.utils import timezone

    from config.roles import ensure_groups
    from corpus.importers.writer import (
        PAIR_COLUMNS,
        PROMPT_COLUMNS,
        RESPONSE_COLUMNS,
        TableWriter,
    )
    from corpus.models import Dataset, HumanVote, Pair, Prompt, Response
    from judges.models import ClassificationRun, Judge, ResponseClassification, Verdict

    rng = random.Random(SEED)
    lead_group, _ = ensure_groups()
    lead = User.objects.create_user("bench-lead", password="x")
    lead.groups.add(lead_group)
    dataset = Dataset.objects.create(name="browse-bench")
    judges = [
        Judge.objects.create(
            name=name, provider="imported", model_id=name, fingerprint=f"bench-{name}"
        )
        for name in ("judge-gpt", "judge-llama")
    ]
    now = timezone.now()
    started = time.perf_counter()
    with transaction.atomic():
        table = TableWriter(now)
        try:
            prompt_ids = table.allocate(Prompt, n)
            response_ids = table.allocate(Response, 2 * n)
            pair_ids = table.allocate(Pair, n)
            prompts, responses, pairs, verdicts, votes, classes = [], [], [], [], [], []
            class_names = [c for c, _ in CLASSES]
            class_weights = [w for _, w in CLASSES]
            for i in range(n):
                prompt = _text(rng, 18)
                if rng.random() < 0.30:
                    prompt = prompt[:-1] + " about the volcano?"
                texts = [_text(rng, 70), _text(rng, 70)]
                if rng.random() < 0.001:
                    texts[rng.randrange(2)] += " A zeppelin drifts over."
                if rng.random() < 0.01:
                    texts[rng.randrange(2)] += " Use a tension wrench."
                category = CATEGORIES[min(int(rng.paretovariate(1.2)) - 1, 9)]
                model_a, model_b = rng.sample(MODELS, 2)
                pid, ra, rb = prompt_ids[i], response_ids[2 * i], response_ids[2 * i + 1]
                prompts.append((pid, dataset.pk, prompt, f"p{i}", f"k{i}", category, {}))
                responses.append((ra, pid, model_a, texts[0], True, f"a{i}"))
                responses.append((rb, pid, model_b, texts[1], True, f"b{i}"))
                pairs.append(
                    (pair_ids[i], dataset.pk, f"k{i:06d}", pid, ra, rb, 1, category, f"h{i}", {})
                )
                for judge in judges:
                    outcome = rng.choices(["A", "B", "tie"], [0.45, 0.40, 0.15])[0]
                    consistent = rng.random() > 0.10
                    verdicts.append(
                        (
                            judge.pk,
                            pair_ids[i],
                            outcome if consistent else "tie",
                            consistent,
                            outcome,
                            "ok",
                            "",
                            "",
                            "",
                        )
                    )
                for v in range(rng.choice((1, 1, 2, 3))):
                    votes.append(
                        (
                            pair_ids[i],
                            "generic",
                            f"voter-{v}",
                            rng.choices(["A", "B", "tie"], [0.45, 0.40, 0.15])[0],
                            f"{i}-{v}",
                        )
                    )
                for rid in (ra, rb):
                    label = rng.choices(class_names, class_weights)[0]
                    classes.append((rid, "bench-classifier", label, 0.9, {label: 0.9}, 0.1, False))
            table.insert(Prompt, PROMPT_COLUMNS, prompts)
            table.insert(Response, RESPONSE_COLUMNS, responses)
            table.insert(Pair, PAIR_COLUMNS, pairs)
            table.insert(
                Verdict,
                [
                    "id",
                    "judge",
                    "pair",
                    "outcome",
                    "consistent",
                    "outcome_ab",
                    "status_ab",
                    "raw_ab",
                    "raw_ba",
                    "row_hash",
                ],
                _with_ids(table, Verdict, verdicts),
            )
            table.insert(
                HumanVote,
                ["id", "pair", "source", "voter_id", "outcome", "row_hash"],
                _with_ids(table, HumanVote, votes),
            )
            table.insert(
                ResponseClassification,
                [
                    "id",
                    "response",
                    "classifier",
                    "label",
                    "score",
                    "scores",
                    "refusal_probability",
                    "uncertain",
                ],
                _with_ids(table, ResponseClassification, classes),
            )
            table.sync()
        finally:
            table.close()
        ClassificationRun.objects.create(
            dataset=dataset, status="done", classifier="bench-classifier"
        )
    with connection.cursor() as cursor:
        # What autovacuum does to a table soon after a bulk load: statistics, and the
        # visibility map that lets index-only scans skip the rows.
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    seconds = time.perf_counter() - started
    print(f"  (built {n:,} pairs in {seconds:,.0f} s)", flush=True)
    middle = (
        Pair.objects.filter(dataset=dataset).order_by("pk").values_list("pk", flat=True)[n // 2]
    )
    return {"lead": lead, "dataset": dataset, "judges": judges, "middle": middle}


def _reused() -> dict[str, Any] | None:
    """The data of an earlier run kept with --keep, if this database holds it."""
    from django.contrib.auth.models import User

    from corpus.models import Dataset, Pair
    from judges.models import Judge

    dataset = Dataset.objects.filter(name="browse-bench").first()
    if dataset is None:
        return None
    ids = Pair.objects.filter(dataset=dataset).order_by("pk").values_list("pk", flat=True)
    print(f"  (reusing the {ids.count():,} pairs kept by an earlier --keep run)", flush=True)
    return {
        "lead": User.objects.get(username="bench-lead"),
        "dataset": dataset,
        "judges": list(Judge.objects.filter(fingerprint__startswith="bench-").order_by("name")),
        "middle": ids[ids.count() // 2],
    }


def _ms(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * len(ordered)) - 1)]
    return statistics.median(ordered) * 1000, p95 * 1000


def _replay(raw: Any, sql: str, *, bounded: bool, ms: float) -> None:
    """Run one statement; a count gets the view's time bound (and is cut off as there)."""
    if isinstance(raw, sqlite3.Connection):
        deadline = time.monotonic() + ms / 1000
        if bounded:
            raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 200)
        try:
            raw.execute(sql).fetchall()
        except sqlite3.OperationalError:
            pass
        finally:
            raw.set_progress_handler(None, 0)
        return
    import psycopg

    if bounded:
        raw.execute(f"SET statement_timeout = {int(ms)}")
    try:
        raw.execute(sql).fetchall()
    except psycopg.errors.QueryCanceled:
        pass
    finally:
        if bounded:
            raw.execute("SET statement_timeout = 0")


def _floor(statements: list[str]) -> float:
    """p50 in ms of replaying the statements on a raw driver connection."""
    from django.conf import settings
    from django.db import connection

    if connection.vendor == "postgresql":
        import psycopg

        raw: Any = psycopg.connect(**connection.get_connection_params(), autocommit=True)
        raw.execute("SET jit = off")  # as the view's transaction does (SET LOCAL)
    else:
        raw = sqlite3.connect(settings.DATABASES["default"]["NAME"])
    from analysis.browse import COUNT_MS

    times = []
    try:
        for run in range(WARM + RUNS):
            started = time.perf_counter()
            for sql in statements:
                _replay(raw, sql, bounded=sql.startswith("SELECT COUNT(*)"), ms=COUNT_MS)
            if run >= WARM:
                times.append(time.perf_counter() - started)
    finally:
        raw.close()
    return _ms(times)[0]


def child(n: int) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    world = _reused() or build(n)
    client = Client()
    client.force_login(world["lead"])
    gpt = world["judges"][0].pk
    base = f"/datasets/{world['dataset'].name}/pairs/"
    kinds: list[tuple[str, dict[str, Any]]] = [
        ("first page, no filter", {}),
        ("a page half-way (key after the 50,000th pair)", {"after": world["middle"]}),
        ("search common word (~30% of pairs)", {"q": "volcano"}),
        ("search rare word (~0.1%)", {"q": "zeppelin"}),
        ("search phrase (~1%)", {"q": '"tension wrench"'}),
        ("search, no match", {"q": "xylophonist"}),
        ("search + model + judge verdict",
         {"q": "volcano", "model": "model-03", "judge": gpt, "verdict": "B"}),
        ("search rare word + people's vote", {"q": "zeppelin", "vote": "A"}),
        ("category (a rare one)", {"category": "category-9"}),
        ("model", {"model": "model-07"}),
        ("response class ethical refusal (either side)", {"response_class": "ethical_refusal"}),
        ("response class technical disclaimer (rare)", {"response_class": "technical_disclaimer"}),
        ("judge verdict B", {"judge": gpt, "verdict": "B"}),
        ("judge flips when swapped", {"judge": gpt, "verdict": "inconsistent"}),
        ("people's majority B", {"vote": "B"}),
        ("people split", {"vote": "split"}),
        ("disagreement: judge vs people", {"disagreement": "judge_people", "judge": gpt}),
        ("disagreement: judges disagree", {"disagreement": "judges"}),
    ]  # fmt: skip
    vendor = connection.vendor
    for name, query in kinds:
        url = base + ("?" + urlencode(query) if query else "")
        _report(client, vendor, n, name, url, htmx=True)
    pair = world["middle"]
    _report(client, vendor, n, "pair page", f"{base}{pair}/", htmx=False)
    _report(
        client, vendor, n, "full list page (filter menus cached)", base + "?q=volcano", htmx=False
    )


def _report(client: Any, vendor: str, n: int, name: str, url: str, *, htmx: bool) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    times, cpu = [], []
    for run in range(WARM + RUNS):
        started, cpu_started = time.perf_counter(), time.process_time()
        response = client.get(url, **headers)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code}")
        if run >= WARM:
            times.append(elapsed)
            cpu.append(time.process_time() - cpu_started)
    with CaptureQueriesContext(connection) as captured:
        client.get(url, **headers)
    statements = [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].startswith("SELECT")  # not BEGIN, SAVEPOINT, SET LOCAL …
        and "django_session" not in q["sql"]
        and "auth_user" not in q["sql"]
    ]
    p50, p95 = _ms(times)
    floor = _floor(statements)
    print(
        f"browse {n:,} pairs ({vendor}), {name}: p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
        f"this process's CPU p50 {_ms(cpu)[0]:.1f} ms "
        f"(floor: SQL alone p50 {floor:.1f} ms, {len(statements)} statements)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--engines", nargs="+", choices=["sqlite", "postgresql"])
    parser.add_argument(
        "--keep",
        action="store_true",
        help="PostgreSQL: keep the bench database afterwards and reuse it next time",
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    sys.path.insert(0, str(ROOT))
    from bench.benchdb import bench_database, postgres_url

    url = postgres_url()
    engines = args.engines or (["postgresql", "sqlite"] if url else ["sqlite"])
    for engine in engines:
        if engine == "postgresql" and not url:
            raise SystemExit("postgresql: set DATABASE_URL=postgres://… (the server to use)")
        environ = {
            key: value
            for key, value in os.environ.items()
            if key not in ("REDIS_URL", "CACHE_URL", "CELERY_BROKER_URL")
        }
        with (
            tempfile.TemporaryDirectory(prefix="tribunal-browse-") as tmp,
            bench_database(
                tmp,
                BENCH_DB,
                postgres=url if engine == "postgresql" else None,
                keep=args.keep,
                environ=environ,
            ) as env,
        ):
            subprocess.run(
                [sys.executable, __file__, "--child", str(args.pairs)], env=env, check=True
            )


if __name__ == "__main__":
    main()
