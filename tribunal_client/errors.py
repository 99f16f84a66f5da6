"""What can go wrong talking to a Tribunal server, as exceptions a pipeline can catch.

Every exception is a :class:`TribunalError` carrying the server's own message (DRF's
``detail`` or its ``{field: [problem]}``), the HTTP status and the request's URL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tribunal_client.results import ImportJob


class TribunalError(Exception):
    """A call failed: the server said no, or could not be asked."""

    def __init__(
        self, message: str, *, status: int | None = None, url: str | None = None, body: Any = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.url = url
        self.body = body


class AuthError(TribunalError):
    """No token, a token the server does not know (401), or one that may not do this (403)."""


class NotFound(TribunalError):
    """404: no such audit, import, dataset or judge (or no release gate yet)."""


class BadRequest(TribunalError):
    """400: the server refused the request; ``fields`` maps each field to its problems."""

    @property
    def fields(self) -> dict[str, list[str]]:
        if not isinstance(self.body, dict):
            return {}
        if isinstance(self.body.get("field"), str):  # {"detail": problem, "field": name}
            return {self.body["field"]: [str(self.body.get("detail", ""))]}
        return {
            str(key): [str(v) for v in value] if isinstance(value, list) else [str(value)]
            for key, value in self.body.items()
            if key != "detail"
        }


class ServerUnreachable(TribunalError, ConnectionError):
    """The server could not be reached or did not answer within the timeout."""


class WaitTimeout(TribunalError, TimeoutError):
    """Waited for an import, labels or figures longer than allowed; ``last`` is the last state."""

    def __init__(self, message: str, *, last: Any = None) -> None:
        super().__init__(message)
        self.last = last


class ImportFailed(TribunalError):
    """The server refused a file: ``errors`` are its ``file:line: field: problem`` messages.

    Imports are all-or-nothing, so nothing of the file was written.
    """

    def __init__(self, job: ImportJob) -> None:
        shown = job.errors[:20]
        more = len(job.errors) - len(shown)
        lines = [f"import {job.id} of {job.filename} into {job.dataset} failed:"]
        lines += [f"  {error}" for error in shown]
        if more:
            lines.append(f"  ... and {more} more")
        super().__init__("\n".join(lines))
        self.job = job
        self.errors = list(job.errors)
