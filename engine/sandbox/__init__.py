"""Local emulators for the demo and the tests: moto's server for AWS, fleetctl's own Azure emulators."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any

from engine import fsutil


def serve_until_signalled(state_dir: str | Path, info_file: str, info: dict[str, Any]) -> None:
    """Publish how to reach an emulator (`state_dir/info_file`, read by `fleetctl sandbox up`) and block until
    SIGTERM/SIGINT; the caller stops its server afterwards."""
    state = Path(state_dir)
    state.mkdir(parents=True, exist_ok=True)
    # atomic: `sandbox up` polls for the file and must never read half of it; 0600: it holds keys
    fsutil.write_atomic(state / info_file, json.dumps(info) + "\n")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
