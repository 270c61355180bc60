"""Shared by test_server.py and test_browser.py: one small collection per test session, and a live server.

The collection holds three renderings from ``conftest.renderings``: chorale ``a`` at its tempo, the same
chorale at 0.7x speed (``a_slow``, a second "interpretation") and another chorale ``b``.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

SERVER_KEYS = ("a", "a_slow", "b")


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (read from /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def server_collection(tmp_path_factory, renderings) -> Path:
    """Build (once per session) and return the path of the server tests' collection."""
    from mirsearch.collection import Collection

    base = tmp_path_factory.getbasetemp()
    root = base / "server-collection.mirs"
    done = base / "server-collection.done"
    if not done.exists():
        with Collection.create(root, features=["chroma"]) as coll:
            report = coll.add([renderings[k].path for k in SERVER_KEYS], jobs=1)
        assert not report.failed, report.failed
        assert len(report.added) == len(SERVER_KEYS)
        done.touch()
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """The real app under uvicorn in a thread on a free loopback port (stopped by :meth:`stop`); with ``warm``
    its search workers start and warm up first (on a loaded machine that takes longer than a page timeout)."""

    def __init__(self, app, *, port: int | None = None, warm: bool = False):
        import uvicorn

        if warm:  # as `mirsearch serve` does: search workers started and warm before the first request
            app.state.server.tasks.start(wait=True)

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-test", daemon=True)

    def start(self, timeout: float = 30.0) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def open_page(browser, url: str, *, width: int = 1280, height: int = 900, timeout_ms: int = 60_000):
    """A new page of the app at ``url``, loaded and ready; returns ``(page, errors)`` (the page's JS errors)."""
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(timeout_ms)
    page.goto(url + "/")
    page.wait_for_selector("body[data-ready='1']")
    return page, errors
