"""The ``tribunal`` command: a Tribunal server's release gate, reports and exports, from any
machine (a CI job, a training pipeline), over the REST API.

    tribunal gate --url https://tribunal.example --token-env TRIBUNAL_TOKEN --audit 12 \\
        --judge my-judge --rule "lower(cohen_kappa) >= 0.6"

Exit codes, as ``manage.py gate``: 0 PASS, 1 FAIL, 2 INCONCLUSIVE; 3 for a usage error, a
token the server refuses, a server it cannot reach, or anything else that leaves no verdict.
``tribunal import`` exits 1 when the server refuses the file (its errors are printed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from tribunal_client.client import DEFAULT_TIMEOUT, EXPORT_FORMATS, Client, api_url
from tribunal_client.errors import (
    AuthError,
    ImportFailed,
    NotFound,
    TribunalError,
)

EXIT_CODES = {"PASS": 0, "FAIL": 1, "INCONCLUSIVE": 2}
USAGE_ERROR = 3
REFUSED = 1
_Run = Callable[[Client, argparse.Namespace], int]  # a subcommand: its exit code


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error; 2 is INCONCLUSIVE here, so usage errors exit 3."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def _server_options() -> _Parser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--url",
        default=os.environ.get("TRIBUNAL_URL"),
        help="the server, e.g. https://tribunal.example (its /api/ is added); "
        "default $TRIBUNAL_URL",
    )
    common.add_argument(
        "--token-env",
        default="TRIBUNAL_TOKEN",
        metavar="VAR",
        help="the environment variable holding a lead's API token (default TRIBUNAL_TOKEN)",
    )
    common.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"give up on a call after this long (default {DEFAULT_TIMEOUT:g})",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tribunal",
        description="Talk to a Tribunal server: release gate, reports, exports, imports.",
        epilog="Exit codes: 0 PASS, 1 FAIL, 2 INCONCLUSIVE (gate); 3 usage or connection error.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    common = [_server_options()]

    def command(name: str, run: _Run, **kwargs: Any) -> argparse.ArgumentParser:
        """A subcommand taking the server options; ``main`` calls ``run(client, args)``."""
        sub = commands.add_parser(name, parents=common, **kwargs)
        sub.set_defaults(run=run)
        return sub

    gate = command(
        "gate",
        _gate,
        help="check an audit's release gate (exit 0 PASS, 1 FAIL, 2 INCONCLUSIVE)",
        description="Check an audit's release gate as `manage.py gate` does: the stored gate, "
        "or with --rule those rules for --judge, stored nowhere.",
    )
    gate.add_argument("--audit", type=int, required=True, metavar="N", help="audit id")
    gate.add_argument(
        "--judge",
        metavar="NAME",
        help="the judge (its newest version on the audit); with no --rule, the stored gate "
        "must be about it",
    )
    gate.add_argument(
        "--rule",
        action="append",
        default=[],
        metavar="RULE",
        help="check this rule instead of the stored gate, e.g. "
        "'lower(cohen_kappa) >= 0.6 on each slice with n >= 30' (repeatable)",
    )
    gate.add_argument("--format", choices=["text", "json"], default="text")

    report = command("report", _report, help="print an audit's or a dataset's figures as JSON")
    subject = report.add_mutually_exclusive_group(required=True)
    subject.add_argument("--audit", type=int, metavar="N", help="audit id")
    subject.add_argument("--dataset", metavar="NAME", help="dataset name")
    report.add_argument(
        "--wait",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="wait this long for the first figures (default 120)",
    )

    export = command(
        "export",
        _export,
        help="download audits' calibration set and its manifest (sha256 checked)",
    )
    export.add_argument(
        "--audit", type=int, action="append", required=True, metavar="N", help="repeatable"
    )
    export.add_argument("--output", required=True, metavar="PATH", help="the data file")
    export.add_argument(
        "--format", choices=EXPORT_FORMATS, help="default: the output file's suffix"
    )
    export.add_argument(
        "--layout",
        choices=("flat", "generic"),
        default="flat",
        help="flat: one plain value per cell (default); generic: nested, imports back",
    )

    upload = command(
        "import",
        _import,
        help="import files of pairs and verdicts and wait for each (exit 1 if refused)",
    )
    upload.add_argument("--dataset", required=True, metavar="NAME")
    upload.add_argument("--format", default="generic", help="import format (default generic)")
    upload.add_argument(
        "--wait", type=float, default=600.0, metavar="SECONDS", help="per file (default 600)"
    )
    upload.add_argument("files", nargs="+", metavar="FILE")
    return parser


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _gate(client: Client, args: argparse.Namespace) -> int:
    result = client.gate(args.audit, judge=args.judge, rules=args.rule or None)
    if args.format == "json":
        _print_json(result.raw)
    else:
        for line in result.lines():
            print(line)
    return EXIT_CODES[result.status]


def _report(client: Client, args: argparse.Namespace) -> int:
    if args.audit is not None:
        report = client.report(args.audit, wait=args.wait)
    else:
        report = client.dataset_report(args.dataset, wait=args.wait)
    _print_json(report.raw)
    return 0


def _export(client: Client, args: argparse.Namespace) -> int:
    done = client.export(args.audit, args.output, file_format=args.format, layout=args.layout)
    print(f"wrote {done.path} ({done.size:,} bytes, sha256 {done.sha256}) and {done.manifest_path}")
    return 0


def _import(client: Client, args: argparse.Namespace) -> int:
    for name in args.files:
        try:
            job = client.import_file(
                name, dataset=args.dataset, format=args.format, timeout=args.wait
            )
        except ImportFailed as exc:
            print(f"tribunal: {exc.message}", file=sys.stderr)
            return REFUSED
        except OSError as exc:
            raise _Usage(f"{name}: {exc.strerror or exc}") from None
        counts = ", ".join(f"{key} {value}" for key, value in sorted(job.counts.items()))
        print(f"{name}: import {job.id} into {job.dataset} {job.status}: {counts or 'nothing new'}")
    return 0


class _Usage(Exception):
    """A usage error found while running (a file that cannot be read)."""


def _explain(exc: TribunalError, client: Client | None, variable: str) -> str:
    where = client.url if client is not None else "the server"
    if isinstance(exc, AuthError) and exc.status == 401:
        return f"the server at {where} refused the token in ${variable}: {exc.message}"
    if isinstance(exc, AuthError) and exc.status == 403:
        return f"the token in ${variable} may not do this on {where}: {exc.message}"
    if isinstance(exc, NotFound) and exc.url:
        return f"{exc.message} ({exc.url})"
    return exc.message


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("give --url URL (or set TRIBUNAL_URL)")
    if getattr(args, "rule", None) and not args.judge:
        parser.error("--rule needs --judge NAME")
    if args.command == "export" and not args.format:
        args.format = Path(args.output).suffix.lstrip(".").lower()
        if args.format not in EXPORT_FORMATS:
            parser.error(
                f"--format: give one of {', '.join(EXPORT_FORMATS)} (or an output "
                "file ending in one)"
            )
    try:
        api_url(args.url)
    except ValueError as exc:
        parser.error(f"--url: {exc}")
    run: _Run = args.run
    client = None
    try:
        client = Client.from_env(args.url, args.token_env, timeout=args.timeout)
        with client:
            return run(client, args)
    except TribunalError as exc:
        message = _explain(exc, client, args.token_env)
    except _Usage as exc:
        message = str(exc)
    except Exception as exc:  # anything else: Python would exit 1, which reads as a FAIL
        message = f"unexpected {type(exc).__name__}: {exc}"
    print(f"tribunal {args.command}: {message}", file=sys.stderr)
    return USAGE_ERROR


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
