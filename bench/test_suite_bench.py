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

`--same-tests` runs in each tree only the tests both have: the suite has grown since REV, and
this compares the same work. A test of REV is matched by its node id; failing that, by its file
name and test name in another folder (tests moved with the code they test); failing that, by a
test name found once in each tree. It prints how many of REV's tests were matched.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
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


def _collected(tree: Path) -> list[str]:
    """The node ids of `tree`'s fast suite (its serial tests included), without repeats."""
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(
        [*command, "-m", "not slow and not browser"],
        cwd=tree,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""},
    )
    if done.returncode != 0:  # a module that fails to import would leave its tests out
        sys.exit(f"{tree}: collecting the fast suite failed:\n{done.stdout[-3000:]}{done.stderr}")
    return list(dict.fromkeys(line for line in done.stdout.splitlines() if "::" in line))


def _file_and_name(node: str) -> str:
    path, rest = node.split("::", 1)
    return f"{path.rsplit('/', 1)[-1]}::{rest}"


def _test_name(node: str) -> str:
    return node.split("::", 1)[1]


def matched_tests(before: list[str], after: list[str]) -> list[tuple[str, str]]:
    """(node id before, node id after) of the tests both lists have (module docstring)."""
    in_after = set(after)
    pairs = [(node, node) for node in before if node in in_after]
    for key in (_file_and_name, _test_name):
        taken = {old for old, _ in pairs} | {new for _, new in pairs}
        left_before = [node for node in before if node not in taken]
        left_after = [node for node in after if node not in taken]
        once_before = Counter(key(node) for node in left_before)
        once_after = Counter(key(node) for node in left_after)
        by_key = {key(node): node for node in left_after if once_after[key(node)] == 1}
        pairs += [
            (node, by_key[key(node)])
            for node in left_before
            if once_before[key(node)] == 1 and key(node) in by_key
        ]
    return pairs


def _restricted(commands: list[str], nodes: list[str]) -> list[str]:
    """Each command with the node ids it would collect: a command that names test files keeps
    the ids in those files; one that names none gets them all (its -m still selects)."""
    restricted = []
    for command in commands:
        files = [word for word in shlex.split(command) if word.endswith(".py")]
        mine = [node for node in nodes if not files or node.split("::", 1)[0] in files]
        if mine:
            restricted.append(f"{command} {' '.join(shlex.quote(node) for node in mine)}")
    return restricted


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
    parser.add_argument(
        "--same-tests", action="store_true", help="run only the tests both trees have"
    )
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
            if args.same_tests:
                collected = {name: _collected(tree) for name, tree in trees.items()}
                pairs = matched_tests(collected[args.before], collected["this tree"])
                print(
                    f"same tests: {len(pairs):,} of the {len(collected[args.before]):,} tests "
                    f"of {args.before}'s fast suite found in this tree",
                    flush=True,
                )
                for index, name in enumerate(trees):
                    nodes = [pair[index] for pair in pairs]
                    plans[name] = _restricted(plans[name], nodes)
            seconds: dict[str, list[float]] = {name: [] for name in trees}
            tests: dict[str, int] = {}
            suite = "same tests" if args.same_tests else "fast suite"
            for round_ in range(1, args.rounds + 1):
                for name, tree in trees.items():
                    elapsed, tests[name] = _run(tree, plans[name])
                    seconds[name].append(elapsed)
                    print(
                        f"round {round_}: {suite}, {name} ({tests[name]:,} tests passed): "
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
        print(f"{suite}, {name} ({tests[name]:,} tests): median {value:.1f} s")
    now, then = medians["this tree"], medians[args.before]
    print(
        f"this tree against {args.before}: {then / now:.2f}x as fast ({then:.1f} s -> {now:.1f} s)"
    )
    per_test = (then / tests[args.before]) / (now / tests["this tree"])
    print(f"per test passed: {per_test:.2f}x as fast")


if __name__ == "__main__":
    main()
