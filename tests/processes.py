"""Child processes the tests start (a Celery worker, llama.cpp's server)."""

from __future__ import annotations

import subprocess


def process_stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Ask the process to stop (SIGTERM); kill it if it has not within ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
