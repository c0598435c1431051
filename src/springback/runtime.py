"""Process set-up shared by the workflow scripts: logs, threads, offline hub."""

from __future__ import annotations

import logging
import os
import sys


def start(log_path: str | None, *, threads: int = 1) -> None:
    """Send stdout/stderr to the rule's log, configure logging, pin torch threads, stay offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if log_path:
        stream = open(log_path, "a", buffering=1)
        sys.stdout = sys.stderr = stream
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                        format="%(asctime)s %(name)s %(message)s")
    import torch

    torch.set_num_threads(max(1, threads))
