"""The client: one object per server and token, one method per thing a pipeline does.

    from tribunal_client import Client

    with Client.from_env("https://tribunal.example", "TRIBUNAL_TOKEN") as tribunal:
        job = tribunal.import_file("verdicts.jsonl", dataset="nightly")   # waits; ImportFailed
        audit = tribunal.create_audit(name="nightly", dataset="nightly", judges=["my-judge"],
                                      size=200, annotators=["ana", "ben"])
        tribunal.wait_for_labels(audit.id, timeout=3 * 24 * 3600)
        if tribunal.gate(audit.id).status != "PASS": ...

Every call has a timeout (``timeout`` seconds, 30 by default; the waits have their own, with
backoff between polls). Errors are :mod:`tribunal_client.errors` exceptions with the server's
message. Needs httpx only: never imports Django.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx

from tribunal_client.errors import (
    AuthError,
    BadRequest,
    ImportFailed,
    NotFound,
    ServerUnreachable,
    TribunalError,
    WaitTimeout,
)
from tribunal_client.results import Audit, Export, GateResult, ImportJob, Judge, Report

DEFAULT_TIMEOUT = 30.0
FIRST_POLL = 1.0  # seconds before the second look; each wait after is BACKOFF times longer
BACKOFF = 1.5
LONGEST_POLL = 30.0
EXPORT_FORMATS = ("jsonl", "csv", "parquet")
_ERRORS: dict[int, type[TribunalError]] = {
    400: BadRequest,
    401: AuthError,
    403: AuthError,
    404: NotFound,
}
T = TypeVar("T")


def api_url(url: str) -> str:
    """The API root of a server: ``https://host``, ``https://host/api`` and
    ``https://host/api/`` all give ``https://host/api/``. Raises ValueError for a bad URL."""
    parsed = httpx.URL(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"{url!r} is not an http(s) URL (e.g. https://tribunal.example)")
    path = parsed.path.rstrip("/")
    if not path.endswith("/api"):
        path += "/api"
    return str(parsed.copy_with(path=path + "/", query=None, fragment=None))


def _server_message(response: httpx.Response) -> tuple[str, Any]:
    """The server's own words: DRF's `detail`, or `field: problem; ...`."""
    try:
        body = response.json()
    except ValueError:
        kind = response.headers.get("content-type", "no content type")
        return f"HTTP {response.status_code} ({kind}, not JSON: is this a Tribunal server?)", None
    if isinstance(body, dict):
        if isinstance(body.get("detail"), str):
            field = body.get("field")
            return (f"{field}: {body['detail']}" if field else body["detail"]), body
        parts = []
        for key, value in body.items():
            problems = value if isinstance(value, list) else [value]
            parts.append(f"{key}: {' '.join(str(p) for p in problems)}")
        return "; ".join(parts) or f"HTTP {response.status_code}", body
    if isinstance(body, list):
        return "; ".join(str(p) for p in body) or f"HTTP {response.status_code}", body
    return f"HTTP {response.status_code}: {body}", body


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    url = str(response.request.url)
    if response.is_redirect:
        where = response.headers.get("location", "?")
        raise TribunalError(
            f"{url} redirects to {where}: give the server's final address",
            status=response.status_code,
            url=url,
        )
    message, body = _server_message(response)
    error = _ERRORS.get(response.status_code, TribunalError)
    if error is TribunalError:
        message = f"HTTP {response.status_code} from {url}: {message}"
    raise error(message, status=response.status_code, url=url, body=body)


class Client:
    """A Tribunal server, as one user (a lead's token for most calls)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not token or not token.strip():
            raise AuthError("no API token given")
        self.url = api_url(url)
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Token {token.strip()}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=False,
        )

    @classmethod
    def from_env(cls, url: str, variable: str = "TRIBUNAL_TOKEN", **options: Any) -> Client:
        """A client whose token is in the environment variable ``variable``."""
        token = os.environ.get(variable, "").strip()
        if not token:
            raise AuthError(f"{variable} is not set: put a lead's API token in it")
        return cls(url, token, **options)

    @classmethod
    def login(
        cls, url: str, username: str, password: str, *, timeout: float = DEFAULT_TIMEOUT
    ) -> Client:
        """A client for a user name and password (``POST /api/token/``)."""
        root = api_url(url)
        with httpx.Client(timeout=httpx.Timeout(timeout)) as http:
            credentials = {"username": username, "password": password}
            response = _send(http, "POST", root + "token/", timeout, data=credentials)
        try:
            _raise_for(response)
        except BadRequest as exc:  # DRF answers wrong credentials with a 400
            raise AuthError(exc.message, status=exc.status, url=exc.url, body=exc.body) from None
        return cls(url, response.json()["token"], timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing ---------------------------------------------------------------------------

    def _request(self, method: str, path: str, **options: Any) -> httpx.Response:
        response = _send(self._http, method, path, self.timeout, **options)
        _raise_for(response)
        return response

    def _json(self, method: str, path: str, **options: Any) -> Any:
        response = self._request(method, path, **options)
        try:
            return response.json()
        except ValueError:
            url = str(response.request.url)
            raise TribunalError(
                f"{url} answered HTTP {response.status_code} without JSON: is it a Tribunal "
                "server's address?",
                status=response.status_code,
                url=url,
            ) from None

    def _poll(
        self,
        fetch: Callable[[], T],
        done: Callable[[T], bool],
        *,
        timeout: float,
        describe: Callable[[T], str],
    ) -> T:
        """Call ``fetch`` until ``done``, sleeping FIRST_POLL, then BACKOFF times longer each
        time (at most LONGEST_POLL), for at most ``timeout`` seconds in all."""
        deadline = time.monotonic() + timeout
        delay = FIRST_POLL
        while True:
            value = fetch()
            if done(value):
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(f"{describe(value)} after waiting {timeout:g} s", last=value)
            time.sleep(min(delay, left))
            delay = min(delay * BACKOFF, LONGEST_POLL)

    # --- pairs and verdicts in --------------------------------------------------------------

    def import_file(
        self,
        path: str | os.PathLike[str],
        *,
        dataset: str,
        format: str = "generic",
        wait: bool = True,
        timeout: float = 600.0,
    ) -> ImportJob:
        """Upload one file to import into ``dataset`` (created if new) and, with ``wait``,
        wait for the import to finish. Raises :class:`ImportFailed` with the file's
        ``file:line: field`` errors when it is refused (and nothing of it was written)."""
        source = Path(path)
        with source.open("rb") as handle:
            job = self._upload(source.name, handle, dataset=dataset, fmt=format)
        return self.wait_for_import(job.id, timeout=timeout) if wait else job

    def import_rows(
        self,
        rows: Iterable[Mapping[str, Any]],
        *,
        dataset: str,
        filename: str = "pairs.jsonl",
        wait: bool = True,
        timeout: float = 600.0,
    ) -> ImportJob:
        """Import pairs, votes and verdicts given as dicts in Tribunal's ``generic`` schema
        (one dict per line of a JSONL file; see docs/import-formats.md)."""
        body = "".join(json.dumps(dict(row), ensure_ascii=False) + "\n" for row in rows)
        job = self._upload(filename, body.encode(), dataset=dataset, fmt="generic")
        return self.wait_for_import(job.id, timeout=timeout) if wait else job

    def _upload(
        self, name: str, content: IO[bytes] | bytes, *, dataset: str, fmt: str
    ) -> ImportJob:
        data = self._json(
            "POST",
            "imports/",
            data={"format": fmt, "dataset": dataset},
            files={"file": (name, content)},
        )
        return ImportJob.from_json(data)

    def import_job(self, job_id: int) -> ImportJob:
        return ImportJob.from_json(self._json("GET", f"imports/{int(job_id)}/"))

    def wait_for_import(self, job_id: int, *, timeout: float = 600.0) -> ImportJob:
        """Wait until the import is done (returned) or failed (:class:`ImportFailed`)."""
        job = self._poll(
            lambda: self.import_job(job_id),
            lambda j: j.finished,
            timeout=timeout,
            describe=lambda j: (
                f"import {j.id} is still {j.status} ({j.rows_done} of {j.rows_total} rows)"
            ),
        )
        if job.status == "failed":
            raise ImportFailed(job)
        return job

    # --- audits -----------------------------------------------------------------------------

    def judges(self, dataset: str) -> list[Judge]:
        """The judge versions with verdicts on ``dataset``."""
        data = self._json("GET", f"datasets/{dataset}/")
        return [Judge.from_json(row) for row in data.get("judges") or []]

    def judge_named(self, dataset: str, name: str) -> Judge:
        """The newest version of judge ``name`` on ``dataset``; NotFound lists the judges."""
        judges = self.judges(dataset)
        matches = [j for j in judges if j.name == name]
        if not matches:
            known = ", ".join(sorted({j.name for j in judges})) or "none"
            raise NotFound(f"no judge {name!r} on dataset {dataset} (judges: {known})")
        return max(matches, key=lambda j: j.version)

    def create_audit(
        self,
        *,
        name: str,
        dataset: str,
        size: int,
        judges: Sequence[int | str] = (),
        annotators: Sequence[str] = (),
        overlap_k: int | None = None,
        quotas: Mapping[str, int | None] | None = None,
        seed: int | None = None,
        **options: Any,
    ) -> Audit:
        """Build an audit of ``size`` pairs. ``judges`` are ids or names (a name is that
        judge's newest version on the dataset); other ``options`` (``guidelines``,
        ``criteria``, ``thresholds``, ...) are sent as they are (see /api/docs/)."""
        judge_ids = [
            judge if isinstance(judge, int) else self.judge_named(dataset, judge).id
            for judge in judges
        ]
        body: dict[str, Any] = {
            "name": name,
            "dataset": dataset,
            "size": size,
            "judges": judge_ids,
            "annotators": list(annotators),
            **options,
        }
        if overlap_k is not None:
            body["overlap_k"] = overlap_k
        if quotas is not None:
            body["quotas"] = dict(quotas)
        if seed is not None:
            body["seed"] = seed
        return Audit.from_json(self._json("POST", "audits/", json=body))

    def audit(self, audit_id: int) -> Audit:
        return Audit.from_json(self._json("GET", f"audits/{int(audit_id)}/"))

    def wait_for_labels(
        self, audit_id: int, *, labels: int | None = None, timeout: float = 3600.0
    ) -> Audit:
        """Wait until the audit has ``labels`` labels (all it needs by default)."""

        def enough(audit: Audit) -> bool:
            wanted = audit.progress.labels_needed if labels is None else labels
            return audit.progress.labels_done >= wanted

        return self._poll(
            lambda: self.audit(audit_id),
            enough,
            timeout=timeout,
            describe=lambda a: (
                f"audit {a.id} has {a.progress.labels_done} of "
                f"{labels if labels is not None else a.progress.labels_needed} labels"
            ),
        )

    # --- figures and the gate ---------------------------------------------------------------

    def report(self, audit_id: int, *, wait: float = 120.0) -> Report:
        """The audit's figures; waits up to ``wait`` seconds for the first snapshot."""
        return self._report(f"audits/{int(audit_id)}/report/", wait)

    def dataset_report(self, dataset: str, *, wait: float = 120.0) -> Report:
        """A dataset's figures (its imported votes against its verdicts)."""
        return self._report(f"datasets/{dataset}/report/", wait)

    def _report(self, path: str, wait: float) -> Report:
        return self._poll(
            lambda: Report.from_json(self._json("GET", path)),
            lambda r: r.snapshot is not None or wait <= 0,
            timeout=wait,
            describe=lambda r: (
                f"no figures yet for {r.subject.get('kind')} {r.subject.get('name')!r}"
            ),
        )

    def gate(
        self, audit_id: int, *, judge: str | None = None, rules: Sequence[str] | None = None
    ) -> GateResult:
        """Check the audit's release gate: PASS, FAIL or INCONCLUSIVE.

        Without arguments, the stored gate. With ``judge`` (a name: its newest version on
        the audit) and ``rules``, those rules, stored nowhere; with ``judge`` alone, the stored
        gate, which must be about that judge. A judge the audit lacks is a BadRequest that
        lists the audit's judges.
        """
        if rules and not judge:
            raise ValueError("rules need the judge they are about: give judge=NAME")
        if judge is None:
            return GateResult.from_json(self._json("GET", f"audits/{int(audit_id)}/gate/"))
        body: dict[str, Any] = {"judge": judge}
        if rules:
            body["rules"] = list(rules)
        data = self._json("POST", f"audits/{int(audit_id)}/gate/check/", json=body)
        return GateResult.from_json(data)

    # --- calibration sets out ---------------------------------------------------------------

    def export(
        self,
        audit_ids: int | Sequence[int],
        path: str | os.PathLike[str],
        *,
        file_format: str | None = None,
        layout: str = "flat",
        timeout: float | None = None,
    ) -> Export:
        """Stream the audits' calibration set to ``path`` and its manifest to
        ``path.manifest.json``, and check the file's sha256 against the manifest.

        The format defaults to the file's suffix (jsonl, csv or parquet). ``layout`` is
        ``flat`` (one plain value per cell, for analysis) or ``generic`` (nested; it imports
        back into Tribunal with the ``generic`` format). The file is written
        under a temporary name and moved into place only once it matches its manifest.
        """
        target = Path(path)
        fmt = file_format or target.suffix.lstrip(".").lower()
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"file_format: give one of {', '.join(EXPORT_FORMATS)}")
        ids = [audit_ids] if isinstance(audit_ids, int) else list(audit_ids)
        if layout not in ("flat", "generic"):
            raise ValueError("layout: give flat or generic")
        query = {"audit": [int(pk) for pk in ids], "file_format": fmt, "layout": layout}
        partial = target.with_name(f".{target.name}.part")
        try:
            digest, size = self._download("exports/", query, partial, timeout)
            manifest = self._json("GET", "exports/manifest/", params=query)
            if manifest.get("sha256") != digest:
                raise TribunalError(
                    f"the download's sha256 {digest} is not its manifest's "
                    f"{manifest.get('sha256')}: the audits changed meanwhile; download again"
                )
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        manifest_path = target.with_name(target.name + ".manifest.json")
        manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        return Export(target, manifest_path, manifest, digest, size)

    def _download(
        self, path: str, query: dict[str, Any], out: Path, timeout: float | None
    ) -> tuple[str, int]:
        digest = hashlib.sha256()
        size = 0
        wait = httpx.Timeout(timeout if timeout is not None else self.timeout)
        try:
            with self._http.stream("GET", path, params=query, timeout=wait) as response:
                if not response.is_success:
                    response.read()
                    _raise_for(response)
                with out.open("wb") as sink:
                    for chunk in response.iter_bytes():
                        digest.update(chunk)
                        size += len(chunk)
                        sink.write(chunk)
        except httpx.TransportError as exc:
            raise _unreachable(exc, str(self._http.base_url), self.timeout) from exc
        return digest.hexdigest(), size


def _unreachable(exc: httpx.TransportError, url: str, timeout: float) -> ServerUnreachable:
    if isinstance(exc, httpx.TimeoutException):
        return ServerUnreachable(
            f"{url} did not answer within {timeout:g} s ({type(exc).__name__})", url=url
        )
    return ServerUnreachable(f"cannot reach {url}: {exc or type(exc).__name__}", url=url)


def _send(
    http: httpx.Client, method: str, path: str, timeout: float, **options: Any
) -> httpx.Response:
    try:
        return http.request(method, path, **options)
    except httpx.TransportError as exc:
        raise _unreachable(exc, str(http.base_url.join(path)), timeout) from exc
