"""Run the installed TensorBoard server on loopback and read its HTTP data API.

Test and documentation plumbing, not part of the library: used by
``tools/screenshot_dashboard.py`` and ``tests/test_tensorboard_server.py`` (whose
``conftest.py`` puts ``tools/`` on ``sys.path``). The server binds
127.0.0.1 only, and requests go through an opener with no proxies, so nothing
leaves the machine.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

HOST = "127.0.0.1"
# No proxy handler: an http_proxy variable must not route loopback traffic elsewhere.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# TensorBoard without TensorFlow: a module named tensorboard.compat.notf is TensorBoard's
# own switch to its TensorFlow stub (tensorboard/compat/__init__.py), the mode a
# TensorBoard-only install runs in. It reads local event files the same way and starts in
# ~1 s instead of ~9 (the TensorFlow import); a TensorBoard without the switch just
# imports TensorFlow as usual.
_MAIN_WITHOUT_TF = (
    "import sys, types; "
    "sys.modules['tensorboard.compat.notf'] = types.ModuleType('tensorboard.compat.notf'); "
    "from tensorboard.main import run_main; run_main()"
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class TensorBoardServer:
    """``python -m tensorboard.main`` on 127.0.0.1 for one log folder; a context manager.

    ``start`` returns once the server answers and (optionally) ``ready(self)`` is
    true; ``stop`` always ends the process (terminate, then kill). ``tensorflow=False``
    runs it on its TensorFlow stub, as without TensorFlow installed: a quicker start.
    """

    def __init__(
        self,
        logdir: str,
        port: int | None = None,
        load_fast: str = "false",
        tensorflow: bool = True,
    ) -> None:
        self.logdir = os.path.abspath(logdir)
        self.port = port or free_port()
        # load_fast=false: the pure-Python reader, which every install has; "auto"
        # would pick the separate Rust data server when that package is present.
        self.load_fast = load_fast
        self.tensorflow = tensorflow
        self.process: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(
        self, timeout: float = 90.0, ready: Callable[[TensorBoardServer], bool] | None = None
    ) -> TensorBoardServer:
        main = ["-m", "tensorboard.main"] if self.tensorflow else ["-c", _MAIN_WITHOUT_TF]
        cmd = [
            sys.executable,
            *main,
            "--logdir",
            self.logdir,
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--load_fast",
            self.load_fast,
            "--reload_interval",
            "1",
        ]
        self.process = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"tensorboard exited with {self.process.returncode}:\n{self.output()}"
                )
            try:
                self.get_json("/data/runs", timeout=2.0)
                if ready is None or ready(self):
                    return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(
            f"tensorboard not ready on {self.url} after {timeout:.0f} s:\n{self.output()}"
        )

    def get(self, path: str, params: dict[str, str] | None = None, timeout: float = 10.0) -> bytes:
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        with _OPENER.open(url, timeout=timeout) as response:
            return response.read()

    def get_json(
        self, path: str, params: dict[str, str] | None = None, timeout: float = 10.0
    ) -> Any:
        return json.loads(self.get(path, params, timeout))

    def output(self) -> str:
        """What the server printed so far (for error messages)."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-4000:]

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)

    def __enter__(self) -> TensorBoardServer:
        return self if self.process is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._log.close()


def scalar_tags_ready(run_tags: dict[str, set[str]]) -> Callable[[TensorBoardServer], bool]:
    """A ``ready`` check: every run lists at least the given scalar tags."""

    def ready(server: TensorBoardServer) -> bool:
        tags = server.get_json("/data/plugin/scalars/tags")
        return all(expected <= set(tags.get(run, {})) for run, expected in run_tags.items())

    return ready
