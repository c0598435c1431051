"""Process set-up shared by the workflow scripts: logs, threads, offline hub, one-line errors."""

from __future__ import annotations

import functools
import logging
import os
import sys
import traceback
from typing import TextIO


def error_line(err: BaseException) -> str:
    """``springback: error: <ExceptionType>: <message>``, on one line."""
    return f"springback: error: {type(err).__name__}: {' '.join(str(err).split())}"


def report_error(kind: type, err: BaseException, tb, *, console: TextIO) -> None:
    """sys.excepthook: the traceback to the log, then the one-line error as its last line (and on
    the console, so Snakemake's output shows it too)."""
    traceback.print_exception(kind, err, tb, file=sys.stderr)
    line = error_line(err)
    print(line, file=sys.stderr, flush=True)
    if console is not sys.stderr:
        print(line, file=console, flush=True)


def start(log_path: str | None, *, threads: int = 1) -> None:
    """Send stdout/stderr to the rule's log, configure logging, pin torch threads, stay offline,
    and end an uncaught exception with one line naming it."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    sys.excepthook = functools.partial(report_error, console=sys.stderr)
    if log_path:
        stream = open(log_path, "a", buffering=1)
        sys.stdout = sys.stderr = stream
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                        format="%(asctime)s %(name)s %(message)s")
    import torch

    torch.set_num_threads(max(1, threads))
