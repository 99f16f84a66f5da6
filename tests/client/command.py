"""Running the `tribunal` command as a CI job would: a separate process, over HTTP.

The console script exists only once the package is reinstalled, so the tests run
`python -m tribunal_client` (what the script calls) from the repository root.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKEN_VAR = "CI_TRIBUNAL_TOKEN"


def tribunal(*args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `tribunal ARGS` with the token (if any) in $CI_TRIBUNAL_TOKEN; never hangs the
    suite (the command's own --timeout is what the tests check)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in (TOKEN_VAR, "TRIBUNAL_TOKEN", "TRIBUNAL_URL")
    }
    env["PYTHONIOENCODING"] = "utf-8"
    if token is not None:
        env[TOKEN_VAR] = token
    return subprocess.run(
        [sys.executable, "-m", "tribunal_client", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
