"""A typed client for a Tribunal server's REST API, and the `tribunal` command.

For pipelines: push pairs and verdicts, build an audit, wait for its labels, read its report,
check its release gate, download its calibration set. Needs httpx only (never Django), so it
runs on any machine that can reach the server. See docs/client.md.
"""

from __future__ import annotations

from tribunal_client.client import Client, api_url
from tribunal_client.errors import (
    AuthError,
    BadRequest,
    ImportFailed,
    NotFound,
    ServerUnreachable,
    TribunalError,
    WaitTimeout,
)
from tribunal_client.results import (
    Audit,
    Export,
    GateResult,
    GateRule,
    ImportJob,
    Judge,
    Progress,
    Report,
)

__all__ = [
    "Audit",
    "AuthError",
    "BadRequest",
    "Client",
    "Export",
    "GateResult",
    "GateRule",
    "ImportFailed",
    "ImportJob",
    "Judge",
    "NotFound",
    "Progress",
    "Report",
    "ServerUnreachable",
    "TribunalError",
    "WaitTimeout",
    "api_url",
]
