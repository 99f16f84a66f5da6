"""Writes for judges: pinned versions, runs, and the verdicts a run stores.

The HTML views, the REST API, the management commands and the Celery task all call these.
The judge itself (prompts, parsing, HTTP, both orders, the run loop) is pure code in
`judges.core`; this module feeds it pairs from the database and writes back what it returns.

Verdict storage, per (judge version, pair):

- each order's call is written as soon as it returns (`outcome_<o>`, `status_<o>`, `raw_<o>`,
  `criteria_<o>`, `margin_<o>`, and `order_details[<o>]`, the runner's full record minus the
  raw text), in its own short transaction, so progress survives a crash or a stop;
- when all orders of a pair are in, the combined `outcome`, `strength`, `consistent` and
  `margin` are written (MT-Bench's rule: orders that disagree make a tie; an order without a
  parsed verdict leaves no combined outcome, because a failure is not a tie);
- the stored orders are the cache, keyed by (fingerprint, pair, order): the judge row *is* the
  fingerprint, so a rerun reads `ok` and `failed` orders back and calls only for the rest.
  A call that errored (HTTP failure, timeout) says nothing about the pair and is retried.

Everything in BA order is stored in the pair's own labels: `outcome_ba = "A"` means the
judge preferred the pair's response A, although it saw it second.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Final, Required, TypedDict, Unpack

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from config.leases import WORKER_LOST, Heartbeat, lease_expired, lease_take, max_attempts
from config.tasks import enqueue
from corpus.models import Dataset, Pair
from judges import selectors
from judges.core.client import ChatClient
from judges.core.config import (
    PAIRWISE_PROMPT_PROVIDERS,
    UNHASHED_FIELDS,
    JudgeConfig,
    JudgeConfigError,
)
from judges.core.families import family_clean
from judges.core.parsing import map_back
from judges.core.runner import (
    ChatCompleter,
    OrderResult,
    PairPayload,
    PairResult,
    RunCounts,
    run_judge,
)
from judges.core.templates import TemplateError, preset
from judges.models import Judge, JudgeFamily, JudgeRun, ModelFamily, ParseStatus, Verdict

log = logging.getLogger(__name__)

# Short names accepted wherever a preset is chosen (command line, forms, API).
PRESET_ALIASES: Final = {
    "mt-bench": "mt_bench_pair_v2",
    "sos-bench": "sos_bench_five_criteria",
}
LOCAL_PROVIDERS: Final = ("transformers_reward", "transformers_causal")
RUNNABLE_PROVIDERS: Final = ("openai_compatible", *LOCAL_PROVIDERS)
NAME_MAX: Final = 200
PAIR_CHUNK: Final = 200
PROGRESS_EVERY_S: Final = 0.5
STOP_POLL_EVERY_S: Final = 1.0
_MIRROR: Final = str.maketrans({"A": "B", "B": "A"})


def _invalid(exc: Exception, default_field: str = "config") -> ValidationError:
    """A core error as a Django ValidationError keyed by the field it names."""
    if isinstance(exc, JudgeConfigError):
        return ValidationError({exc.field: exc.message})
    return ValidationError({default_field: str(exc)})


# --- configurations ------------------------------------------------------------------------------


def preset_name(name: str) -> str:
    """The canonical preset name for an alias (``mt-bench``) or a canonical name."""
    return PRESET_ALIASES.get(name, name)


def judge_config_build(
    *,
    preset_id: str | None = None,
    system_in_user: bool = False,
    tie_epsilon: float | None = None,
    **fields: Any,
) -> JudgeConfig:
    """A validated `JudgeConfig` from a prompt preset plus options.

    ``fields`` are `JudgeConfig` fields; None means "not given" (the default applies).
    Defaults that depend on the installation:

    - an ``openai_compatible`` judge without ``base_url`` gets ``settings.JUDGE_DEFAULT_BASE_URL``;
    - a local ``transformers_*`` judge's ``model_id`` (a directory) is made absolute, and
      without ``model_revision`` it is pinned to a digest of the directory's files.

    ``system_in_user`` folds the system prompt into the user turn, for models whose chat
    format has no system role (Gemma's own chat template does exactly this). ``tie_epsilon``
    is a reward judge's tie threshold (kept in its rubric, so it is fingerprinted).
    Raises `ValidationError` naming the field at fault.
    """
    from judges import local_models

    values = {k: v for k, v in fields.items() if v is not None}
    values.setdefault("provider", "openai_compatible")
    provider = values["provider"]
    if preset_id:
        try:
            template = preset(preset_name(preset_id))
        except TemplateError as exc:
            raise ValidationError({"preset": str(exc)}) from None
        values.setdefault("template_name", template.name)
        values.setdefault("template_system", template.system)
        values.setdefault("template_user", template.user)
    elif provider in PAIRWISE_PROMPT_PROVIDERS and not values.get("template_user"):
        raise ValidationError(
            {"preset": f"choose a prompt preset ({', '.join(PRESET_ALIASES)}) or give a template"}
        )
    if system_in_user and values.get("template_system"):
        values["template_user"] = values["template_system"] + "\n\n" + values["template_user"]
        values["template_system"] = ""
        values["template_name"] = (values.get("template_name") or "custom") + "+system_in_user"
    if provider == "openai_compatible" and not values.get("base_url"):
        if not settings.JUDGE_DEFAULT_BASE_URL:
            raise ValidationError(
                {"base_url": "give the endpoint's base URL, or set JUDGE_BASE_URL for a default"}
            )
        values["base_url"] = settings.JUDGE_DEFAULT_BASE_URL
    if provider in LOCAL_PROVIDERS:
        model_dir = Path(str(values.get("model_id", ""))).expanduser()
        if not str(values.get("model_id", "")).strip() or not model_dir.is_dir():
            raise ValidationError(
                {"model_id": f"{values.get('model_id', '')!r}: not a model directory"}
            )
        values["model_id"] = str(model_dir.resolve())
        if not values.get("model_revision"):
            try:
                values["model_revision"] = local_models.model_dir_digest(model_dir)
            except local_models.LocalModelError as exc:
                raise ValidationError({"model_id": str(exc)}) from None
    if tie_epsilon is not None:
        if provider != "transformers_reward":
            raise ValidationError({"tie_epsilon": "only a reward-model judge has a tie threshold"})
        try:
            values["rubric"] = local_models.reward_rubric(float(tie_epsilon))
        except (JudgeConfigError, ValueError) as exc:
            raise _invalid(exc, "tie_epsilon") from None
    try:
        config = JudgeConfig.from_dict(values)
        if provider == "transformers_reward":
            local_models.reward_tie_epsilon(config.rubric)
    except (JudgeConfigError, TypeError) as exc:
        raise _invalid(exc) from None
    return config


def judge_config_of(judge: Judge) -> JudgeConfig:
    """The pinned configuration of a judge version, re-validated."""
    try:
        return JudgeConfig.from_dict(judge.config)
    except (JudgeConfigError, TypeError) as exc:
        raise ValidationError(
            {"judge": f"{judge}: stored configuration is invalid: {exc}"}
        ) from None


# --- versions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class JudgeVersion:
    judge: Judge
    created: bool
    settings_updated: tuple[str, ...] = ()


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "give the judge a name"})
    if ":" in name:
        raise ValidationError({"name": f"{name!r}: ':' separates a name from its version"})
    if len(name) > NAME_MAX:
        raise ValidationError({"name": f"at most {NAME_MAX} characters"})
    return name


def judge_version_get_or_create(*, config: JudgeConfig, name: str) -> JudgeVersion:
    """The judge version with this configuration's fingerprint, created if new.

    A new fingerprint under an existing name becomes that name's next version; the same
    fingerprint is the same judge whatever name it is asked for under. Fields outside the
    fingerprint (where the server is, the key's variable, pacing) are updated in place on an
    existing version: they change how calls are made, never what a verdict says.
    """
    name = _clean_name(name)
    fingerprint = config.fingerprint()
    for _ in range(3):
        with transaction.atomic():
            existing = Judge.objects.select_for_update().filter(fingerprint=fingerprint).first()
            if existing is not None:
                changed = _refresh_unhashed(existing, config)
                return JudgeVersion(existing, created=False, settings_updated=changed)
            latest = Judge.objects.filter(name=name).aggregate(v=Max("version"))["v"] or 0
            try:
                with transaction.atomic():
                    judge = Judge.objects.create(
                        name=name,
                        version=latest + 1,
                        fingerprint=fingerprint,
                        **_judge_columns(config),
                    )
            except IntegrityError:
                continue  # another request created this fingerprint or version: look again
            return JudgeVersion(judge, created=True)
    raise ValidationError({"name": f"{name}: could not allocate a version; try again"})


def judge_version_for(config: JudgeConfig, name: str) -> Judge:
    """The `Judge` row for ``config`` (see `judge_version_get_or_create`)."""
    return judge_version_get_or_create(config=config, name=name).judge


def _judge_columns(config: JudgeConfig) -> dict[str, Any]:
    return {
        "provider": config.provider,
        "model_id": config.model_id,
        "model_revision": config.model_revision,
        "template_name": config.template_name,
        "prompt_template": config.template_system,
        "rubric": config.rubric,
        "tie_policy": config.tie_policy,
        "swap_policy": config.swap_policy,
        "temperature": config.temperature,
        "seed": config.seed,
        "max_tokens": config.max_tokens,
        "config": config.to_dict(),
    }


def _refresh_unhashed(judge: Judge, config: JudgeConfig) -> tuple[str, ...]:
    stored = dict(judge.config)
    new = config.to_dict()
    changed = tuple(f for f in UNHASHED_FIELDS if stored.get(f) != new[f])
    if changed:
        stored.update({f: new[f] for f in changed})
        judge.config = stored
        judge.template_name = config.template_name
        judge.save(update_fields=["config", "template_name"])
    return changed


# --- runs: starting and stopping ---------------------------------------------------------------


def judge_run_create(
    *,
    judge: Judge,
    dataset: Dataset | None,
    pair_ids: Sequence[int] | None = None,
    scope: str = "",
    limit: int | None = None,
    created_by: Any = None,
) -> JudgeRun:
    """A pending run of ``judge`` over a dataset's pairs (not started).

    ``pair_ids`` narrows the run to those pairs of the dataset, in that order, and ``scope``
    says for people which they are ("audit 3"): the caller chooses the set, so a run over an
    audit's items is asked for by the annotation app. ``limit`` keeps the first N pairs
    (the dataset's import order, or the order given). Only pairs with a prompt and two
    response texts are judged.
    """
    if judge.provider not in RUNNABLE_PROVIDERS:
        raise ValidationError(
            {"judge": f"{judge} holds imported verdicts; import its files instead of running it"}
        )
    judge_config_of(judge)
    if dataset is None:
        raise ValidationError({"dataset": "choose a dataset"})
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValidationError({"limit": f"{limit!r}: a limit is a whole number of pairs >= 1"})
    chosen = None if pair_ids is None else [int(pk) for pk in pair_ids]
    found = selectors.judge_run_pair_ids(dataset=dataset, pair_ids=chosen)
    if not found:
        where = f"{scope} (dataset {dataset})" if scope else f"dataset {dataset}"
        raise ValidationError({"dataset": f"{where} has no pairs with texts to judge"})
    total = len(found) if limit is None else min(limit, len(found))
    with transaction.atomic():
        active = list(
            JudgeRun.objects.select_for_update().filter(
                judge=judge,
                dataset=dataset,
                scope=scope,
                status__in=[JudgeRun.Status.PENDING, JudgeRun.Status.RUNNING],
                # A run asked to stop no longer counts (a late-finishing run only
                # duplicates a few calls).
                stop_requested=False,
            )
        )
        dead = [run for run in active if _worker_lost(run)]
        busy = next((run for run in active if run not in dead), None)
        if busy is not None:
            raise ValidationError(
                {
                    "judge": f"{judge} is already running on this data (run {busy.pk}); "
                    "wait for it or stop it"
                }
            )
        run = JudgeRun.objects.create(
            judge=judge,
            dataset=dataset,
            pair_ids=chosen,
            scope=scope,
            total=total,
            created_by=created_by,
        )
        for old in dead:  # its worker died: the new run resumes from the stored verdicts
            _run_end(old, JudgeRun.Status.FAILED, f"{WORKER_LOST}; replaced by run {run.pk}")
        return run


def _worker_lost(run: JudgeRun) -> bool:
    """A running run whose worker died (its lease expired, see config.leases)."""
    return run.status == JudgeRun.Status.RUNNING and lease_expired(
        heartbeat_at=run.heartbeat_at, owner=run.lease_owner
    )


def _run_end(run: JudgeRun, status: str, error: str = "") -> None:
    """Put a run whose worker is gone into a final state (call holding its row lock)."""
    run.status, run.error, run.finished_at = status, error, timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])


class JudgeRunRequest(TypedDict, total=False):
    """`judge_run_create`'s keyword arguments, for the functions that pass them on."""

    judge: Required[Judge]
    dataset: Required[Dataset | None]
    pair_ids: Sequence[int] | None
    scope: str
    limit: int | None
    created_by: Any


def judge_run_start(**request: Unpack[JudgeRunRequest]) -> JudgeRun:
    """Create a run (`judge_run_create`, same arguments) and enqueue the `judges.judge_run`
    task once this commits."""
    with transaction.atomic():
        run = judge_run_create(**request)
        enqueue("judges.judge_run", run.pk)
    return run


def judge_run_stop(*, run: JudgeRun) -> JudgeRun:
    """Ask a run to stop: calls in flight finish and are stored, no new call starts.

    A run that has not started, or whose worker died, is stopped at once; a live worker
    stops its run within about a second. Either way the run ends `stopped`."""
    with transaction.atomic():
        run = JudgeRun.objects.select_for_update().get(pk=run.pk)
        run.stop_requested = True
        run.save(update_fields=["stop_requested"])
        if run.status == JudgeRun.Status.PENDING:
            _run_end(run, JudgeRun.Status.STOPPED)
        elif _worker_lost(run):
            _run_end(run, JudgeRun.Status.STOPPED, f"stopped; {WORKER_LOST}")
    return run


def judge_runs_recover() -> list[int]:
    """Finish the running runs whose worker died (the sweep, see config.leases): a run asked
    to stop ends `stopped`; one that has lost `TRIBUNAL_JOB_MAX_ATTEMPTS` workers ends
    `failed` with the reason; any other is queued again and resumes from the verdicts it
    stored. Returns the ids of the runs queued again."""
    queued = []
    candidates = JudgeRun.objects.filter(status=JudgeRun.Status.RUNNING).values_list(
        "pk", flat=True
    )
    for pk in candidates:
        with transaction.atomic():
            run = JudgeRun.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
            if run is None or not _worker_lost(run):
                continue
            if run.stop_requested:
                _run_end(run, JudgeRun.Status.STOPPED, f"stopped; {WORKER_LOST}")
            elif run.attempts >= max_attempts():
                _run_end(
                    run,
                    JudgeRun.Status.FAILED,
                    f"{WORKER_LOST}, {run.attempts} times; the verdicts stored are kept: start the "
                    "run again to resume from them",
                )
            else:
                # Pending again; the fresh heartbeat keeps the next sweep from queueing it twice.
                run.status, run.lease_owner, run.heartbeat_at = (
                    JudgeRun.Status.PENDING,
                    "",
                    timezone.now(),
                )
                run.save(update_fields=["status", "lease_owner", "heartbeat_at"])
                enqueue("judges.judge_run", run.pk)
                queued.append(run.pk)
                log.warning(
                    "judge run %s: %s; queued again (start %s)", pk, WORKER_LOST, run.attempts + 1
                )
    return queued


# --- runs: execution ---------------------------------------------------------------------------


# A run's ``counts`` JSON key for each `RunCounts` field it shows, in the JSON's order.
COUNTS_JSON_NAMES: Final = (
    ("orders", "total"),
    ("orders_done", "done"),
    ("calls", "calls_made"),
    ("http_requests", "http_requests"),
    ("cache_hits", "cache_hits"),
    ("parsed", "parsed"),
    ("failed_parses", "failed_parse"),
    ("errors", "errors"),
)


@dataclass
class _RunState:
    """What the callbacks share during one execution (all in the caller's thread)."""

    run: JudgeRun
    judge: Judge
    cached: dict[int, Verdict] = field(default_factory=dict)
    pairs_done: int = 0
    latency_total_s: float = 0.0
    fresh_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    last_progress: float = float("-inf")
    last_stop_poll: float = float("-inf")
    counts: RunCounts = field(default_factory=RunCounts)
    lease_lost: threading.Event = field(default_factory=threading.Event)

    def counts_json(self) -> dict[str, Any]:
        return {key: getattr(self.counts, name) for key, name in COUNTS_JSON_NAMES} | {
            "mean_latency_s": (
                round(self.latency_total_s / self.fresh_calls, 4) if self.fresh_calls else None
            ),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }


ProgressHook = Callable[[JudgeRun], None]


def judge_run_execute(
    run_id: int,
    *,
    on_progress: ProgressHook | None = None,
    environ: Mapping[str, str] | None = None,
) -> JudgeRun:
    """Run a judge run to the end; idempotent (a finished run is returned as it is).

    Safe to repeat after a crash or a stop: stored orders are cache hits, so only what is
    missing is called. Never holds a transaction across calls: each order's write commits on
    its own, and progress (`JudgeRun.done`, `counts`) is saved about twice a second, so a
    page polling the run sees it move. A failure of the run as a whole (no API key, a
    missing model directory) marks it failed with the reason; one call's failure is an
    ``error`` order, counted, and retried by the next run.
    """
    with transaction.atomic():
        run = JudgeRun.objects.select_for_update().select_related("judge").get(pk=run_id)
        if run.status in (JudgeRun.Status.DONE, JudgeRun.Status.STOPPED, JudgeRun.Status.FAILED):
            return run
        if run.status == JudgeRun.Status.RUNNING and not _worker_lost(run):
            return run  # a live worker runs it: this is a second delivery of the task
        if run.stop_requested:
            _run_end(run, JudgeRun.Status.STOPPED)
            return run
        owner = lease_take(run, running=JudgeRun.Status.RUNNING)
        if owner is None:
            _run_end(run, JudgeRun.Status.FAILED, f"{WORKER_LOST}, {run.attempts - 1} times")
            return run
    state = _RunState(run=run, judge=run.judge)
    with Heartbeat(JudgeRun, run.pk, owner) as heartbeat:
        state.lease_lost = heartbeat.lost
        try:
            counts = _execute(state, on_progress=on_progress, environ=environ)
        except Exception as exc:
            log.exception("judge run %s failed", run.pk)
            run.status = JudgeRun.Status.FAILED
            run.error = f"{type(exc).__name__}: {exc}"[:2000]
        else:
            run.status = JudgeRun.Status.STOPPED if counts.stopped else JudgeRun.Status.DONE
    run.finished_at = timezone.now()
    run.done = state.pairs_done
    run.counts = state.counts_json()
    # Only while this worker still holds the run: if it was presumed dead and the run taken
    # over, the result is the other worker's to write.
    JudgeRun.objects.filter(pk=run.pk, lease_owner=owner).update(
        status=run.status,
        error=run.error,
        finished_at=run.finished_at,
        done=run.done,
        counts=run.counts,
        heartbeat_at=run.finished_at,
    )
    if on_progress is not None and run.status != JudgeRun.Status.FAILED:
        on_progress(run)
    return run


def _execute(
    state: _RunState, *, on_progress: ProgressHook | None, environ: Mapping[str, str] | None
) -> RunCounts:
    judge, run = state.judge, state.run
    config = judge_config_of(judge)
    client: ChatCompleter
    owned: ChatClient | None = None
    if config.provider == "openai_compatible":
        owned = client = _http_client(config, environ)
        run_config = config
    else:
        from judges.local_models import load_local_judge

        local = load_local_judge(config)
        client, run_config = local, local.run_config(config)
    pair_ids = selectors.judge_run_pair_ids(dataset=run.dataset, pair_ids=run.pair_ids)
    pair_ids = pair_ids[: run.total]

    def lookup(_fingerprint: str, pair_id: Any, order: Any) -> OrderResult | None:
        verdict = state.cached.get(pair_id)
        return None if verdict is None else _cached_order(verdict, order, judge.fingerprint)

    def store(result: OrderResult) -> None:
        _store_order(judge, result)
        if result.latency_s is not None:
            state.fresh_calls += 1
            state.latency_total_s += result.latency_s
        state.prompt_tokens += int(result.usage.get("prompt_tokens", 0))
        state.completion_tokens += int(result.usage.get("completion_tokens", 0))

    def on_pair(pair: PairResult) -> None:
        _store_combined(judge, pair, state.cached.pop(int(pair.pair_id), None))
        state.pairs_done += 1

    def progress(counts: RunCounts) -> None:
        state.counts = counts
        now = time.monotonic()
        if now - state.last_progress < PROGRESS_EVERY_S:
            return
        state.last_progress = now
        run.done = state.pairs_done
        run.counts = state.counts_json()
        JudgeRun.objects.filter(pk=run.pk).update(done=run.done, counts=run.counts)
        if on_progress is not None:
            on_progress(run)

    def should_stop() -> bool:
        if state.lease_lost.is_set():
            return True
        now = time.monotonic()
        if now - state.last_stop_poll < STOP_POLL_EVERY_S:
            return False
        state.last_stop_poll = now
        return JudgeRun.objects.filter(pk=run.pk, stop_requested=True).exists()

    try:
        counts = run_judge(
            run_config,
            _payloads(judge, pair_ids, state.cached),
            lookup=lookup,
            store=store,
            progress=progress,
            on_pair=on_pair,
            should_stop=should_stop,
            client=client,
            n_pairs=len(pair_ids),
        )
    finally:
        if owned is not None:
            owned.close()
    state.counts = counts
    return counts


def _http_client(config: JudgeConfig, environ: Mapping[str, str] | None) -> ChatClient:
    """A client for the judge's endpoint, with the key from its variable or the default.

    The default key variable (settings.JUDGE_DEFAULT_API_KEY_ENV) is only sent to the
    default endpoint (settings.JUDGE_DEFAULT_BASE_URL): a key never goes to a server it was
    not configured for.
    """
    env = os.environ if environ is None else environ
    base_url = config.base_url or settings.JUDGE_DEFAULT_BASE_URL
    if config.api_key_env:
        key = config.api_key(env)
    elif base_url and base_url == settings.JUDGE_DEFAULT_BASE_URL:
        key = env.get(settings.JUDGE_DEFAULT_API_KEY_ENV) or None
    else:
        key = None
    return ChatClient(
        base_url,
        api_key=key,
        timeout_s=config.timeout_s,
        max_retries=config.max_retries,
        requests_per_minute=config.requests_per_minute,
        max_concurrency=config.max_concurrency,
    )


def _payloads(
    judge: Judge, pair_ids: list[int], cached: dict[int, Verdict]
) -> Iterator[PairPayload]:
    """The run's pairs in order, read a chunk at a time with the judge's stored verdicts."""
    ids = iter(pair_ids)
    field = str((judge.config or {}).get("reference_field") or "")
    while chunk := list(islice(ids, PAIR_CHUNK)):
        columns = ["pk", "prompt__text", "response_a__text", "response_b__text"]
        if field:
            columns += ["meta", "prompt__meta"]
        texts = {row[0]: row[1:] for row in Pair.objects.filter(pk__in=chunk).values_list(*columns)}
        for verdict in Verdict.objects.filter(judge=judge, pair_id__in=chunk):
            cached[verdict.pair_id] = verdict
        for pk in chunk:
            if pk in texts:  # deleted since the run started: nothing to judge
                question, answer_a, answer_b, *metas = texts[pk]
                reference = pair_reference(field, *metas) if field else None
                yield PairPayload(pk, question, answer_a, answer_b, reference)


def pair_reference(field: str, pair_meta: Any, prompt_meta: Any) -> str | None:
    """The reference answer of a pair: its meta's ``field``, else its prompt's; None when
    neither has one (a number is read as its text)."""
    for meta in (pair_meta, prompt_meta):
        value = meta.get(field) if isinstance(meta, dict) else None
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    return None


def _cached_order(verdict: Verdict, order: str, fingerprint: str) -> OrderResult | None:
    """A stored order as the runner's cache entry; None (call again) unless ok or failed."""
    status = getattr(verdict, f"status_{order}")
    detail = verdict.order_details.get(order)
    if status not in (ParseStatus.OK, ParseStatus.FAILED) or not isinstance(detail, dict):
        return None
    try:
        result = OrderResult.from_dict(
            {**detail, "raw_output": getattr(verdict, f"raw_{order}"), "fingerprint": fingerprint}
        )
    except (KeyError, TypeError, ValueError):
        return None  # an older or foreign record: call again rather than guess
    return result if result.status == status else None


def _criteria_in_pair_labels(result: OrderResult) -> dict[str, Any]:
    """Per-criterion verdicts in the pair's labels (BA's "A>B" is the pair's "B>A")."""
    if result.verdict is None:
        return {}
    criteria = result.verdict.criteria_json()
    if result.order == "ba":
        for item in criteria.values():
            item["outcome"] = map_back(item["outcome"])
            token = str(item.get("token") or "").translate(_MIRROR)
            item["token"] = "A=B" if token == "B=A" else token
    return criteria


def _store_order(judge: Judge, result: OrderResult) -> None:
    order = result.order
    detail = result.to_dict()
    detail.pop("raw_output")
    detail["fingerprint"] = judge.fingerprint
    margin = result.margin_value
    with transaction.atomic():
        verdict, _ = Verdict.objects.select_for_update().get_or_create(
            judge=judge, pair_id=result.pair_id
        )
        setattr(verdict, f"outcome_{order}", result.outcome)
        setattr(verdict, f"status_{order}", result.status)
        setattr(verdict, f"raw_{order}", result.raw_output)
        setattr(verdict, f"criteria_{order}", _criteria_in_pair_labels(result))
        setattr(
            verdict, f"margin_{order}", margin if margin is None or math.isfinite(margin) else None
        )
        verdict.order_details = {**verdict.order_details, order: detail}
        verdict.save()


def _store_combined(judge: Judge, pair: PairResult, before: Verdict | None) -> None:
    combined = pair.combined
    ok = combined.status == "ok"
    values = {
        "outcome": combined.outcome if ok else None,
        "strength": combined.strength if ok else None,
        "consistent": combined.consistent if ok else None,
        "margin": combined.margin
        if ok and combined.margin is not None and math.isfinite(combined.margin)
        else None,
    }
    all_cached = pair.ab.from_cache and (pair.ba is None or pair.ba.from_cache)
    if (
        all_cached
        and before is not None
        and all(getattr(before, name) == value for name, value in values.items())
    ):
        return  # a rerun over stored orders: nothing to write
    Verdict.objects.filter(judge=judge, pair_id=pair.pair_id).update(
        **values, updated_at=timezone.now()
    )


# --- model families ---------------------------------------------------------------------------


def families_update(
    *, models: Mapping[str, str], judges: Mapping[int, str], user: Any = None
) -> dict[str, int]:
    """Set the family of model names and judge versions, all or nothing.

    A blank family removes the lead's choice (the default from the name applies again).
    Raises ValidationError keyed by the place (``models.<name>``, ``judges.<id>``) for a bad
    family name or an unknown judge; nothing is written then. Returns how many were set and
    cleared. Snapshots already stored keep the families they were computed with.
    """
    errors: dict[str, list[str]] = {}
    cleaned_models: dict[str, str] = {}
    cleaned_judges: dict[int, str] = {}
    for target, values, place in (
        (cleaned_models, models, "models"),
        (cleaned_judges, judges, "judges"),
    ):
        for key, value in values.items():
            if place == "models" and not str(key).strip():
                errors.setdefault(place, []).append("a model name may not be blank")
                continue
            try:
                target[key] = family_clean(value) if str(value).strip() else ""  # type: ignore[index]
            except ValueError as exc:
                errors[f"{place}.{key}"] = [str(exc)]
    known = set(Judge.objects.filter(pk__in=list(cleaned_judges)).values_list("pk", flat=True))
    for pk in cleaned_judges:
        if pk not in known:
            errors[f"judges.{pk}"] = [f"no judge version with id {pk}"]
    if errors:
        raise ValidationError(errors)
    counts = {"set": 0, "cleared": 0}
    with transaction.atomic():
        tables: tuple[tuple[type[ModelFamily | JudgeFamily], str, Mapping[Any, str]], ...] = (
            (ModelFamily, "model_name", cleaned_models),
            (JudgeFamily, "judge_id", cleaned_judges),
        )
        for model, key, chosen in tables:
            for value, family in chosen.items():
                if family:
                    model.objects.update_or_create(
                        **{key: value}, defaults={"family": family, "updated_by": user}
                    )
                    counts["set"] += 1
                else:
                    counts["cleared"] += model.objects.filter(**{key: value}).delete()[0]
    return counts
