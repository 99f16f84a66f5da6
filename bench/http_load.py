"""The annotation loop over real HTTP: gunicorn and a Celery worker on PostgreSQL and Redis.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/8 \\
        python bench/http_load.py --workers 4

Creates a throwaway database (DATABASE_URL's name + `_bench_http`, on its server; dropped at the
end unless --keep; REDIS_URL's database is emptied), fills it like bench/annotator_bench.py
(20,000 pairs, two judges' verdicts), builds one audit per phase with the real stratified
builder, starts `gunicorn config.wsgi` (N workers) and `celery -A config worker` (Redis, `-l
INFO` into a log the bench reads), and drives the REST API's submit-and-next loop (`POST
/api/assignments/<id>/label/?next=1`, token auth, one request per label) from a separate
process:

* memory: resident set (RSS, and PSS, which shares copy-on-write pages fairly) of the gunicorn
  master and workers once each worker has served annotator requests, and of the Celery
  worker at rest and after its first report snapshot;
* open loop: annotators with an exponential think time (mean --think) at an offered rate of
  --offered labels/s: p50/p95/p99 latency, errors, the rate achieved;
* closed loop: 16 and 32 annotators without think time: capacity (labels/s) and latency;
* one annotator, sequential, keep-alive: p50/p95 of label?next=1 over HTTP, beside the same
  loop through the services (annotation.queue.label_submit_and_next) in this process;
* snapshot tasks the labels queued per phase, per second (counted as the worker runs them, once
  the queue has drained);
* the database afterwards: labels acknowledged but missing (lost), stored twice, items with
  more labels than the overlap k, items whose label_count is out of step with their labels.

Prints one figure per line. The machine's other load is printed first: the figures are only
as quiet as the machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_SUFFIX = "_bench_http"
SNAPSHOT_RUN = re.compile(r"Task analysis\.snapshot_refresh\[[^\]]+\] (succeeded|raised|failed)")
CHOICES = ("left", "right", "tie")


# --- the driver: a separate process, HTTP only ------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


class _Annotator:
    """One annotator's keep-alive connection and the labels the server acknowledged."""

    def __init__(self, base: str, token: str, audit: int) -> None:
        import httpx

        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Token {token}"}, timeout=30.0
        )
        self.audit = audit
        self.held: dict[str, Any] | None = None
        self.acked: list[str] = []
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def first(self) -> None:
        answer = self.http.post(f"/api/audits/{self.audit}/next/")
        self.held = answer.json() if answer.status_code == 200 else None

    def label(self, n: int) -> bool:
        """Label the held item and take the next; False when nothing is left."""
        if self.held is None:
            return False
        key = self.held["submission_key"]
        body = {"choice": CHOICES[n % 3], "submission_key": key, "time_spent_ms": 4000}
        started = time.perf_counter()
        try:
            answer = self.http.post(f"/api/assignments/{self.held['id']}/label/?next=1", json=body)
        except Exception as exc:  # a timeout or a refused connection is an error, not a crash
            self.errors.append(type(exc).__name__)
            return True
        self.latencies.append((time.perf_counter() - started) * 1000)
        if answer.status_code not in (200, 201):
            self.errors.append(f"{answer.status_code} {answer.text[:200]}")
            self.first()
            return True
        self.acked.append(key)
        self.held = answer.json()["next"]
        return self.held is not None


def _drive(spec: dict[str, Any]) -> dict[str, Any]:
    people = [_Annotator(spec["base"], token, audit) for token, audit in spec["annotators"]]
    for person in people:
        person.first()
    mode, duration, think = spec["mode"], spec.get("duration", 0), spec.get("think", 0)
    stop = time.monotonic() + duration
    base_seed = int(spec.get("seed", 1))

    def run(person: _Annotator, seed: int) -> None:
        # Open loop: each annotator thinks (exponentially, mean `think`) before every label, so
        # the crowd offers len(people) / think labels per second whatever the latency.
        local = random.Random(seed)
        n = 0
        while True:
            if mode == "open":
                pause = local.expovariate(1 / think)
                if time.monotonic() + pause >= stop:
                    return
                time.sleep(pause)
            elif (mode == "closed" and time.monotonic() >= stop) or (
                mode == "single" and n >= spec["iterations"]
            ):
                return
            if not person.label(n):
                return
            n += 1

    started = time.monotonic()
    threads = [
        threading.Thread(target=run, args=(person, base_seed + i), daemon=True)
        for i, person in enumerate(people)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return {
        "elapsed": elapsed,
        "latencies": [ms for p in people for ms in p.latencies],
        "acked": [key for p in people for key in p.acked],
        "errors": [error for p in people for error in p.errors],
        "starved": sum(p.held is None for p in people),
    }


def drive(spec: dict[str, Any], log: Path) -> dict[str, Any]:
    """Run the driver in its own process (its CPU is not the server's)."""
    result = subprocess.run(
        [sys.executable, __file__, "--drive"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if result.returncode != 0:
        log.write_text(result.stderr)
        raise SystemExit(f"bench: the driver failed; see {log}")
    return dict(json.loads(result.stdout))


# --- processes and memory ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def _memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) in MB from /proc/<pid>/smaps_rollup."""
    values = {"Rss": 0.0, "Pss": 0.0}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in values:
                values[name] = int(rest.split()[0]) / 1024
    except OSError:
        pass
    return values["Rss"], values["Pss"]


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time these processes have used (/proc/<pid>/stat), in seconds: what a
    label costs the web workers whatever else the machine runs."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / ticks


def _cpu_by_role(web: list[int], celery: list[int], database: str) -> dict[str, float]:
    """CPU seconds used so far by each part of the stack on this machine: the web workers, the
    Celery worker, PostgreSQL's processes (its background processes and the backends of the
    bench's database, not other databases' backends) and Redis's, and the driver processes this
    bench has waited for (RUSAGE_CHILDREN)."""
    import resource

    ticks = os.sysconf("SC_CLK_TCK")
    roles = {
        "web": _cpu_seconds(web),
        "celery": _cpu_seconds(celery),
        "postgres": 0.0,
        "redis": 0.0,
    }
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm, _, rest = (entry / "stat").read_text().partition(") ")
        except OSError:
            continue
        name = comm.partition("(")[2]
        role = "postgres" if name == "postgres" else "redis" if name.startswith("redis") else ""
        if role == "postgres":
            try:
                title = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            backend = "(" in title or "[local]" in title or "autovacuum worker" in title
            if backend and f" {database} " not in title + " ":
                continue  # another database's session
        if role:
            fields = rest.split()
            # utime, stime, and the times of children it has waited for (backends that ended)
            roles[role] += sum(int(f) for f in fields[11:15]) / ticks
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    roles["driver"] = usage.ru_utime + usage.ru_stime
    # the whole machine: every process, the kernel included (/proc/stat: user nice system idle
    # iowait irq softirq steal), so what the roles above leave out is visible
    times = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    roles["machine busy"] = (sum(times) - times[3] - times[4]) / ticks
    return roles


def _modules(pid: int) -> str:
    """Which heavy libraries a process has mapped (their shared objects)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return "?"
    found = [
        name
        for name, marker in (
            ("torch", "/torch/lib/"),
            ("pandas", "/pandas/_libs/"),
            ("scipy", "/scipy/"),
            ("numpy", "/numpy/_core/"),
            ("pyarrow", "/pyarrow/"),
            ("statsmodels", "/statsmodels/"),
            ("sklearn", "/sklearn/"),
        )
        if marker in maps
    ]
    return ",".join(found) or "none"


def _wait_http(base: str, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/accounts/login/", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit("bench: gunicorn did not answer")


def _snapshots_run(log: Path) -> int:
    """Snapshot tasks the worker has finished (its INFO log has a line for each)."""
    try:
        return len(SNAPSHOT_RUN.findall(log.read_text(errors="replace")))
    except OSError:
        return 0


def _waiting(redis_url: str) -> int:
    """Tasks queued or taken but not finished (countdown tasks are held unacknowledged)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    return int(client.llen("celery")) + int(client.hlen("unacked"))


def _drain(redis_url: str, timeout: float = 60) -> int:
    """Wait up to `timeout` for the worker to run what the phase queued; what still waits."""
    deadline = time.monotonic() + timeout
    while (waiting := _waiting(redis_url)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return waiting


# --- setup in this process (Django on the throwaway database) -------------------------------------


def _bench_db(base_url: str) -> tuple[str, str, str]:
    """(name, URL) of the throwaway database named after DATABASE_URL's, and the URL of the
    server's maintenance database that creates and drops it."""
    server, _, name = base_url.rpartition("/")
    bench = name.split("?")[0] + DB_SUFFIX
    return bench, f"{server}/{bench}", f"{server}/postgres"


def _setup(args: argparse.Namespace, base_url: str) -> dict[str, Any]:
    import psycopg

    name, url, admin = _bench_db(base_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["TRIBUNAL_TASKS_INLINE"] = "true"  # setup queues nothing to a worker
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from bench.annotator_bench import _build_audit, _fill
    from config.roles import ensure_groups

    call_command("migrate", verbosity=0)
    lead_group, annotator_group = ensure_groups()
    lead = User.objects.create_user("bench-lead")
    lead.groups.add(lead_group)
    dataset, judges = _fill(args.pairs)

    def people(prefix: str, n: int) -> list[Any]:
        made = [User.objects.create_user(f"{prefix}-{i:03d}") for i in range(n)]
        for person in made:
            person.groups.add(annotator_group)
        return made

    def tokens(made: list[Any]) -> list[str]:
        return [Token.objects.get_or_create(user=p)[0].key for p in made]

    crowd = people("open", args.annotators_open)
    closed = people("closed", max(args.closed))
    single = people("single", 1)
    phases: dict[str, Any] = {}
    # Items: enough that no annotator runs dry within the phase (k = 2 labels per item).
    sizes = {
        "open": int(args.offered * args.duration * 1.5 / 2) + 200,
        **{f"closed{c}": int(250 * args.closed_duration * 1.2 / 2) + 200 for c in args.closed},
        "single": args.single + 100,
        "services": args.single + 100,
        "profile": args.profile + 100,
    }
    for seed, (name, size) in enumerate(sizes.items(), start=1):
        members = (
            crowd
            if name == "open"
            else single
            if name in ("single", "services", "profile")
            else closed[: int(name.removeprefix("closed"))]
        )
        k = 1 if name in ("single", "services", "profile") else 2
        audit, _ = _build_audit(dataset, judges, lead, members, size, k, seed)
        phases[name] = {
            "audit": audit.pk,
            "tokens": tokens(members) if name not in ("services", "profile") else [],
        }
    # The single annotator's token, once (services run in this process).
    phases["services"]["user"] = single[0].pk
    phases["services"]["tokens"] = []
    return {"url": url, "phases": phases}


def _services_path(audit_id: int, user_id: int, n: int, redis_url: str) -> list[float]:
    """The same loop as the single annotator's, through annotation.queue in this process, with
    the web process's settings (the report snapshot goes to the broker, as there)."""
    from django.conf import settings
    from django.contrib.auth.models import User

    from config import celery_app

    settings.CELERY_BROKER_URL, settings.TRIBUNAL_TASKS_INLINE = redis_url, False
    celery_app.conf.broker_url, celery_app.conf.task_always_eager = redis_url, False

    from annotation import queue
    from annotation.models import Audit

    audit = Audit.objects.get(pk=audit_id)
    person = User.objects.get(pk=user_id)
    assignment = queue.queue_next(audit=audit, annotator=person)
    times = []
    for i in range(n):
        if assignment is None:
            break
        started = time.perf_counter()
        _, assignment = queue.label_submit_and_next(
            assignment=assignment,
            choice=CHOICES[i % 3],
            submission_key=uuid.uuid4(),
            time_spent_ms=4000,
        )
        times.append((time.perf_counter() - started) * 1000)
    return times[10:]  # the first few warm the connection and the caches


def _profile(audit_id: int, user_id: int, n: int) -> str:
    """Where one label?next=1 request spends its time in a web worker: n requests through
    Django's test client in this process (middleware, DRF, the queue, serializers), profiled."""
    import cProfile
    import io
    import pstats

    from django.test import Client
    from rest_framework.authtoken.models import Token

    token = Token.objects.get_or_create(user_id=user_id)[0].key
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    held = client.post(f"/api/audits/{audit_id}/next/").json()
    for i in range(10):  # warm caches and the connection
        body = {"choice": CHOICES[i % 3], "submission_key": held["submission_key"]}
        held = client.post(
            f"/api/assignments/{held['id']}/label/?next=1", body, content_type="application/json"
        ).json()["next"]
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(n):
        body = {"choice": CHOICES[i % 3], "submission_key": held["submission_key"]}
        held = client.post(
            f"/api/assignments/{held['id']}/label/?next=1", body, content_type="application/json"
        ).json()["next"]
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
    stats.print_stats(r"(tribunal|hardening|/annotation/|/config/|django|rest_framework)", 30)
    return out.getvalue()


def _check(audit_id: int, acked: list[str]) -> dict[str, int]:
    """What the database holds after a phase, against what the server acknowledged."""
    from django.db import connection

    from annotation.models import Audit, AuditItem, Label

    audit = Audit.objects.get(pk=audit_id)
    stored = set(
        str(k)
        for k in Label.objects.filter(item__audit=audit).values_list("submission_key", flat=True)
    )
    with connection.cursor() as cursor:
        table = Label._meta.db_table
        items = AuditItem._meta.db_table
        cursor.execute(
            f"SELECT count(*) FROM (SELECT l.item_id, l.annotator_id FROM {table} l "
            f"JOIN {items} i ON i.id = l.item_id WHERE i.audit_id = %s "
            "GROUP BY 1, 2 HAVING count(*) > 1) t",
            [audit_id],
        )
        twice = cursor.fetchone()[0]
        cursor.execute(
            f"SELECT count(*) FILTER (WHERE n > %s), count(*) FILTER (WHERE n <> label_count) "
            f"FROM (SELECT i.id, i.label_count, count(l.id) AS n FROM {items} i "
            f"LEFT JOIN {table} l ON l.item_id = i.id WHERE i.audit_id = %s "
            "GROUP BY i.id, i.label_count) t",
            [audit.overlap_k, audit_id],
        )
        over_k, out_of_step = cursor.fetchone()
    return {
        "acknowledged": len(acked),
        "acknowledged twice": len(acked) - len(set(acked)),
        "lost": len(set(acked) - stored),
        "stored unacknowledged": len(stored - set(acked)),
        "stored twice": twice,
        "items over k": over_k,
        "label_count out of step": out_of_step,
    }


# --- the run -------------------------------------------------------------------------------------


def _line(name: str, value: Any, unit: str = "", note: str = "") -> None:
    text = f"{value:.1f}" if isinstance(value, float) else str(value)
    print(f"{name}: {text}{(' ' + unit) if unit else ''}{('  (' + note + ')') if note else ''}")


def _latency_lines(prefix: str, latencies: list[float], floor: str = "") -> None:
    _line(f"{prefix} p50", _percentile(latencies, 50), "ms")
    _line(f"{prefix} p95", _percentile(latencies, 95), "ms", floor)
    _line(f"{prefix} p99", _percentile(latencies, 99), "ms")


def _cpu_line(prefix: str, result: dict[str, Any]) -> None:
    labels = len(result["acked"])
    if "roles" in result:
        roles = dict(result["roles"])
        busy = roles.pop("machine busy")
        parts = ", ".join(
            f"{role} {seconds * 1000 / max(1, labels):.1f}" for role, seconds in roles.items()
        )
        _line(
            f"{prefix} CPU per label on the machine",
            busy * 1000 / max(1, labels),
            "ms",
            f"of which {parts} ms; the cores were busy "
            f"{busy / result['elapsed'] / (os.cpu_count() or 1):.0%} of the phase",
        )
    _line(
        f"{prefix} web workers' CPU per label",
        result["web_cpu"] * 1000 / max(1, labels),
        "ms",
        "user + system time of the gunicorn workers over the phase: time spent waiting for "
        "a core or the database is not in it, as it is in the latencies",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drive", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--worker-class", default="sync", help="gunicorn worker class")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker")
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--offered", type=float, default=20.0, help="open loop: labels/s")
    parser.add_argument("--think", type=float, default=10.0, help="open loop: mean think, s")
    parser.add_argument("--duration", type=float, default=60.0, help="open loop: seconds")
    parser.add_argument("--closed", type=int, nargs="*", default=[16, 32])
    parser.add_argument("--closed-duration", type=float, default=30.0)
    parser.add_argument("--single", type=int, default=300, help="one annotator: labels")
    parser.add_argument("--profile", type=int, default=0, help="profile N requests in-process")
    parser.add_argument(
        "--shared-cache",
        action="store_true",
        help="CACHE_URL=REDIS_URL for web and worker (snapshot requests coalesce across them)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    if args.drive:
        print(json.dumps(_drive(json.loads(sys.stdin.read()))))
        return
    args.annotators_open = max(1, round(args.offered * args.think))
    base_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/8")
    if not base_url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("bench: DATABASE_URL must be a PostgreSQL server")

    logging.getLogger("httpx").setLevel(logging.WARNING)
    load = os.getloadavg()
    _line(
        "machine", f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    _line(
        "servers",
        f"gunicorn {args.workers} {args.worker_class} workers ({args.threads} threads each), "
        "1 Celery worker (prefork 1), "
        + (
            "cache: Redis (CACHE_URL)"
            if args.shared_cache
            else "cache: the broker's Redis (the settings' default with a Redis broker)"
        ),
    )
    if args.shared_cache:  # the services path in this process too
        os.environ["CACHE_URL"] = redis_url
    started = time.monotonic()
    setup = _setup(args, base_url)
    _line("setup", time.monotonic() - started, "s", f"{args.pairs:,} pairs, audits built")
    workdir = Path(tempfile.mkdtemp(prefix="http_load_"))
    worker_log = workdir / "celery.log"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": setup["url"],
        "CELERY_BROKER_URL": redis_url,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "TRIBUNAL_TASKS_INLINE": "false",
        "LOG_LEVEL": "WARNING",
        **({"CACHE_URL": redis_url} if args.shared_cache else {}),
    }
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--workers", str(args.workers),
         "--worker-class", args.worker_class, "--threads", str(args.threads),
         "--bind", f"127.0.0.1:{port}",
         "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    celery = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency", "1",
         "--without-gossip", "--without-mingle", "-n", "bench@%h", "-l", "INFO"],
        cwd=ROOT, env={**env, "LOG_LEVEL": "INFO"}, start_new_session=True,
        stdout=worker_log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait_http(base)
        phases = setup["phases"]
        time.sleep(3)
        celery_rest = [celery.pid, *_children(celery.pid)]
        rest = [_memory_mb(pid) for pid in celery_rest]
        _line(
            "memory celery worker at rest (master + 1 pool process)",
            sum(r for r, _ in rest),
            "MB RSS",
            f"PSS {sum(p for _, p in rest):.0f} MB; loaded: {_modules(celery_rest[-1])}",
        )

        # Warm every web worker with annotator traffic: a short closed loop.
        warm = phases[f"closed{max(args.closed)}"]
        warmed = drive(
            {
                "base": base,
                "mode": "single",
                "iterations": 3,
                "annotators": [(t, warm["audit"]) for t in warm["tokens"]],
            },
            workdir / "driver.log",
        )
        time.sleep(2)
        workers = _children(gunicorn.pid)
        master = _memory_mb(gunicorn.pid)
        each = [_memory_mb(pid) for pid in workers]
        _line("memory web master", master[0], "MB RSS")
        for i, (pid, (rss, pss)) in enumerate(zip(workers, each, strict=True), start=1):
            _line(
                f"memory web worker {i} after annotator requests",
                rss,
                "MB RSS",
                f"PSS {pss:.0f} MB; loaded: {_modules(pid)}; target <= 150",
            )
        _line(
            f"memory web total (master + {len(workers)} workers)",
            master[0] + sum(r for r, _ in each),
            "MB RSS",
            f"PSS {master[1] + sum(p for _, p in each):.0f} MB; before: 1,091 MB RSS",
        )
        time.sleep(3)  # the snapshot the warm-up asked for
        after = [_memory_mb(pid) for pid in [celery.pid, *_children(celery.pid)]]
        _line(
            "memory celery worker after a report snapshot",
            sum(r for r, _ in after),
            "MB RSS",
            f"PSS {sum(p for _, p in after):.0f} MB; before: 521 MB",
        )

        checks: dict[str, dict[str, int]] = {}
        database = setup["url"].rsplit("/", 1)[1]

        def phase(name: str, spec: dict[str, Any]) -> dict[str, Any]:
            run_before, waiting_before = _snapshots_run(worker_log), _waiting(redis_url)
            celery_pids = [celery.pid, *_children(celery.pid)]
            cpu_before = _cpu_seconds(_children(gunicorn.pid))
            roles_before = _cpu_by_role(_children(gunicorn.pid), celery_pids, database)
            result = drive({"base": base, **spec}, workdir / f"driver-{name}.log")
            result["web_cpu"] = _cpu_seconds(_children(gunicorn.pid)) - cpu_before
            roles_after = _cpu_by_role(_children(gunicorn.pid), celery_pids, database)
            result["roles"] = {k: roles_after[k] - roles_before[k] for k in roles_after}
            waiting = _drain(redis_url)
            time.sleep(1)
            queued = _snapshots_run(worker_log) - run_before + waiting - waiting_before
            _line(
                f"{name} snapshot tasks queued",
                queued / result["elapsed"],
                "tasks/s",
                f"{queued} in {result['elapsed']:.0f} s"
                + (f"; {waiting} still waiting 60 s later" if waiting else "")
                + "; a handful per second at most",
            )
            return result

        # (a) open loop
        spec = {
            "mode": "open",
            "think": args.think,
            "duration": args.duration,
            "annotators": [(t, phases["open"]["audit"]) for t in phases["open"]["tokens"]],
        }
        result = phase("open", spec)
        n = len(result["acked"])
        _line(
            f"open loop offered ({args.annotators_open} annotators, think {args.think:g} s)",
            args.offered,
            "labels/s",
        )
        _line("open loop achieved", n / result["elapsed"], "labels/s", f"{n} labels")
        _latency_lines("open loop label?next=1", result["latencies"], "target < 50 ms")
        _line("open loop errors", len(result["errors"]), "", "; ".join(result["errors"][:3]))
        _cpu_line("open loop", result)
        checks["open"] = _check(phases["open"]["audit"], result["acked"])

        # (b) closed loop
        for c in args.closed:
            name = f"closed{c}"
            spec = {
                "mode": "closed",
                "duration": args.closed_duration,
                "annotators": [(t, phases[name]["audit"]) for t in phases[name]["tokens"]],
            }
            result = phase(f"closed loop {c}", spec)
            n = len(result["acked"])
            _line(
                f"closed loop capacity, {c} annotators",
                n / result["elapsed"],
                "labels/s",
                f"{n} labels in {result['elapsed']:.0f} s"
                + ("; target >= 140 at 32" if c == 32 else ""),
            )
            _latency_lines(f"closed loop {c} label?next=1", result["latencies"])
            _line(
                f"closed loop {c} errors",
                len(result["errors"]),
                "",
                "; ".join(result["errors"][:3]),
            )
            _cpu_line(f"closed loop {c}", result)
            acked = result["acked"] + (warmed["acked"] if phases[name] is warm else [])
            checks[name] = _check(phases[name]["audit"], acked)

        # one annotator, sequential, keep-alive; then the services path, same machine and run
        single = phases["single"]
        spec = {
            "mode": "single",
            "iterations": args.single,
            "annotators": [(single["tokens"][0], single["audit"])],
        }
        cpu_before = _cpu_seconds(_children(gunicorn.pid))
        result = drive({"base": base, **spec}, workdir / "driver-single.log")
        result["web_cpu"] = _cpu_seconds(_children(gunicorn.pid)) - cpu_before
        http = result["latencies"][10:]
        _latency_lines("one annotator label?next=1 over HTTP", http, "target p95 <= 20 ms")
        _line("one annotator errors", len(result["errors"]))
        _cpu_line("one annotator", result)
        checks["single"] = _check(single["audit"], result["acked"])
        services = _services_path(
            phases["services"]["audit"], phases["services"]["user"], args.single, redis_url
        )
        _latency_lines("one annotator label_submit_and_next (services, no HTTP)", services)
        if args.profile:
            print(_profile(phases["profile"]["audit"], phases["services"]["user"], args.profile))

        for name, found in checks.items():
            for what, count in found.items():
                _line(
                    f"database after {name}: {what}",
                    count,
                    "labels" if "items" not in what else "items",
                )
    finally:
        for proc in (gunicorn, celery):
            proc.terminate()  # the masters shut their workers down
        for proc in (gunicorn, celery):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if not args.keep:
            from django.db import connections

            connections.close_all()
            import psycopg

            name, _, admin = _bench_db(base_url)
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
