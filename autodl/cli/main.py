"""The ``autodl`` command: search, resume, worker, show, report, export, predict.

One module per verb (``autodl/cli/<verb>.py``: ``add_parser`` and ``cmd_<verb>``), the shared
helpers in :mod:`autodl.cli.common`, and the flag -> kinds table in :mod:`autodl.cli.flags`.
Every verb works on every kind of run folder through :mod:`autodl.runs`. A user mistake prints
one line, ``autodl VERB: error: <what is wrong and how to fix it>``, and exits with status 2;
so does an operating-system error (permission denied, a folder where a file belongs, a full disk).
"""

from __future__ import annotations

import errno
import sys
from typing import Sequence

from autodl.cli import export, predict, report, resume, search, show, worker
from autodl.cli.common import EXIT_INTERRUPTED, EXIT_USAGE, Parser, err, parse_duration  # noqa: F401
from autodl.errors import UserError

VERBS = {"search": search, "resume": resume, "worker": worker, "show": show, "report": report,
         "export": export, "predict": predict}


def build_parser() -> Parser:
    from autodl._version import __version__

    parser = Parser(prog="autodl", description="AutoML and hyperparameter optimization.")
    parser.add_argument("--version", action="version", version=f"autodl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for module in VERBS.values():
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from autodl.runs import Deadline

    parser = build_parser()
    args = parser.parse_args(argv)
    # --time is a deadline for the whole command, measured from the start of the process
    # (from this call when autodl is called in-process, e.g. by tests)
    seconds = getattr(args, "time", None)
    deadline = Deadline.from_process_start(seconds) if argv is None else Deadline.after(seconds)
    cmd = getattr(VERBS[args.command], f"cmd_{args.command}")
    try:
        return cmd(args, deadline)
    except UserError as exc:
        err(f"autodl {args.command}: error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        err("\nautodl: interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except OSError as exc:  # permission denied, a folder where a file belongs, disk full, ...
        if exc.errno in (errno.EPIPE,):
            return 0
        where = f" ({exc.filename})" if exc.filename else ""
        err(f"autodl {args.command}: error: {exc.strerror or exc}{where}; check the path and its permissions")
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
