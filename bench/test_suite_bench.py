"""How long the fast test suite takes, beside an earlier revision's, in one run.

    python bench/test_suite_bench.py                          # against 4cf34e6, 2 rounds
    python bench/test_suite_bench.py --before REV --rounds 3

The fast suite is what `make test-fast` runs: every test but the slow and browser ones. REV is
checked out (`git worktree`) into a temporary folder beside a link to ../shared, so that its
tests find the data as this tree's do. Each tree runs its own `make test-fast` commands, as
`make -n` prints them, with this tree's virtual environment; the runs alternate (REV, this
tree, REV, ...) so that both see the machine alike. Prints one line per run, then the median
of each and their ratio. The worktree is removed at the end.

4cf34e6 is the main branch when the restructure was asked for (issue 10): "the fast test suite
at least twice as fast as today on the same machine, measured in one run before and after".
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.prefix)


def _commands(tree: Path) -> list[str]:
    """The shell commands of `make test-fast` in `tree`, with this tree's environment."""
    printed = subprocess.run(
        [
            "make",
            "-s",
            "-n",
            "-C",
            str(tree),
            "-o",
            "install",
            "-o",
            f"{VENV}/.installed",
            "test-fast",
            f"VENV={VENV}",
            "PYTEST_ARGS=-q -p no:cacheprovider",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line for line in printed.splitlines() if "pytest" in line]


def _run(tree: Path, commands: list[str]) -> tuple[float, int]:
    """Seconds for the commands, one after another, and the tests they passed."""
    passed = 0
    started = time.perf_counter()
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command], cwd=tree, capture_output=True, text=True, env=os.environ
        )
        if done.returncode != 0:
            sys.exit(f"{tree}: `{command}` failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
        found = re.findall(r"(\d+) passed", done.stdout)
        passed += int(found[-1]) if found else 0
    return time.perf_counter() - started, passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="4cf34e6", help="the revision to compare with")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    shared = (ROOT.parent / "shared").resolve()
    with tempfile.TemporaryDirectory(prefix="tribunal-suite-") as folder:
        before = Path(folder) / "tribunal"
        (Path(folder) / "shared").symlink_to(shared)
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before), args.before],
            check=True,
            capture_output=True,
        )
        try:
            trees = {args.before: before, "this tree": ROOT}
            plans = {name: _commands(tree) for name, tree in trees.items()}
            seconds: dict[str, list[float]] = {name: [] for name in trees}
            tests: dict[str, int] = {}
            for round_ in range(1, args.rounds + 1):
                for name, tree in trees.items():
                    elapsed, tests[name] = _run(tree, plans[name])
                    seconds[name].append(elapsed)
                    print(
                        f"round {round_}: fast suite, {name} ({tests[name]:,} tests passed): "
                        f"{elapsed:.1f} s",
                        flush=True,
                    )
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)],
                check=False,
                capture_output=True,
            )
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    for name, value in medians.items():
        print(f"fast suite, {name} ({tests[name]:,} tests): median {value:.1f} s")
    now, then = medians["this tree"], medians[args.before]
    print(
        f"this tree against {args.before}: {then / now:.2f}x as fast ({then:.1f} s -> {now:.1f} s)"
    )
    per_test = (then / tests[args.before]) / (now / tests["this tree"])
    print(f"per test passed: {per_test:.2f}x as fast")


if __name__ == "__main__":
    main()
