"""``torch-deepsmote``: the command line, a thin layer over the library.

    torch-deepsmote demo                                  # the bundled data, model and report
    torch-deepsmote fit DATA --out DIR                    # train on a folder, .npz/.h5 or dataset
    torch-deepsmote sample DIR --class C -n N --out PATH  # new images of one class
    torch-deepsmote resample DIR --out PATH               # the balanced dataset
    torch-deepsmote report DIR --out REPORT_DIR           # pictures and numbers to judge it

``torch-deepsmote VERB --help`` explains each verb. Exit status 0 on success, 1 on a
failure, 2 on bad usage; errors are one line on stderr, with no traceback (set
``TORCH_DEEPSMOTE_TRACEBACK=1`` to see one).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Sequence

from .parser import build_parser

__all__ = ["build_parser", "main"]

# Errors of the user's making: a missing path, an existing output, a bad option value.
_USAGE = (FileNotFoundError, FileExistsError)
# Failures with a message meant for a person (unreadable data, a damaged model folder).
_FAILURE = (ValueError, TypeError, RuntimeError, OSError, ImportError)


def _warning_printer(to_shell: Callable[[str], str]) -> Callable[..., None]:
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"torch-deepsmote: warning: {to_shell(str(message))}", file=sys.stderr)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``torch-deepsmote`` with ``argv`` (default ``sys.argv[1:]``).

    Returns:
        The exit status: 0 success, 1 failure, 2 bad usage.
    """
    from .commands import UsageError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or argparse's usage error (2)
        return int(stop.code or 0)
    prog = f"torch-deepsmote {args.command}"
    with warnings.catch_warnings():
        warnings.showwarning = _warning_printer(args.to_shell)
        try:
            return args.func(args)
        except KeyboardInterrupt:
            print(f"{prog}: interrupted", file=sys.stderr)
            return 130
        except (UsageError, *_USAGE, *_FAILURE) as error:
            if os.environ.get("TORCH_DEEPSMOTE_TRACEBACK"):
                raise
            usage = isinstance(error, (UsageError, *_USAGE))
            # The library names its Python arguments; the shell user typed flags.
            print(f"{prog}: error: {args.to_shell(_message(error))}", file=sys.stderr)
            return 2 if usage else 1


def _message(error: BaseException) -> str:
    text = str(error.args[0]) if len(error.args) == 1 else str(error)
    return text or type(error).__name__
