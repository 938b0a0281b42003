"""A real JupyterLab and a headless Chromium, started by the tests themselves.

Recipe (../shared/guide/testing.md): Debian's ``/usr/bin/chromium`` driven by the ``playwright`` package
(never ``playwright install``), ``jupyter lab`` on a free loopback port without a token, and a temporary
``HOME`` and ``JUPYTER_*`` directories so nothing is written into the real ones. JupyterLab lives for the
whole session and the browser for a test module (starting them costs seconds); each test gets its own notebook,
its own kernel (shut down after the test) and its own browser context.

The LeadLex sandbox runs in the pytest process (the ``sandbox`` fixture) and the notebook's kernel
reaches it over real sockets: :meth:`Lab.write_notebook` writes the sandbox's base URL and key into a
file beside the notebook, which the notebook's first cell loads into ``os.environ``.

Every test leaves a screenshot of its final state under ``out/browser/`` (ignored by git);
:meth:`Notebook.screenshot` saves more along the way.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

from leadlex_nb.sandbox import Sandbox

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "out" / "browser"
LAB_START_SECONDS = 60       # the server's first answer
FIRST_LOAD_MS = 60_000       # the first page load builds JupyterLab's front end
KERNEL_READY_MS = 60_000
ENV_FILE = "leadlex-test-env.json"

# A first cell that every browser notebook starts with: the sandbox's address and key, from a file the
# test wrote, so the key never sits in a cell's source or output.
ENV_CELL = (
    "import json, os\n"
    f"os.environ.update(json.load(open({ENV_FILE!r})))\n"
    "print('environment loaded')"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        uses_lab = "lab" in getattr(item, "fixturenames", ())
        if Path(str(item.fspath)).is_relative_to(here) and uses_lab and item.get_closest_marker("browser") is None:
            item.add_marker(pytest.mark.browser)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return json.loads(answer.read() or b"null")


def _request(method: str, url: str, timeout: float = 10.0) -> None:
    request = urllib.request.Request(url, method=method)
    with contextlib.suppress(urllib.error.URLError, TimeoutError), urllib.request.urlopen(request, timeout=timeout):
        pass


@dataclass
class Lab:
    """A running JupyterLab server."""

    url: str
    root: Path            # the server's notebook directory
    env: dict[str, str]   # the environment the server (and so every kernel) runs in
    log: Path

    def write_notebook(self, name: str, cells: Sequence[str], sandbox: Sandbox | None = None,
                       files: dict[str, str] | None = None) -> str:
        """A notebook of code cells (and ``files`` beside it); with a sandbox, the first cell loads its
        address and key."""
        for file_name, content in (files or {}).items():
            (self.root / file_name).write_text(content)
        env: dict[str, str] = {}
        if sandbox is not None:
            env = {"LEADLEX_BASE_URL": sandbox.base_url, "LEADLEX_API_KEY": sandbox.api_key}
            cells = [ENV_CELL, *cells]
        (self.root / ENV_FILE).write_text(json.dumps(env))
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.strip()) for c in cells])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
        nbformat.write(nb, self.root / name)
        return name

    def read_notebook(self, name: str) -> nbformat.NotebookNode:
        return nbformat.read(self.root / name, as_version=4)

    def shutdown_kernels(self) -> None:
        for session in _get(f"{self.url}/api/sessions") or []:
            _request("DELETE", f"{self.url}/api/sessions/{session['id']}")
        for kernel in _get(f"{self.url}/api/kernels") or []:
            _request("DELETE", f"{self.url}/api/kernels/{kernel['id']}")


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run installs it)")
    base = tmp_path_factory.mktemp("jupyterlab")
    dirs = {name: base / name for name in ("home", "config", "data", "runtime", "ipython", "settings",
                                           "workspaces", "xdg", "notebooks")}
    for path in dirs.values():
        path.mkdir()
    # No news or update checks: they would pop notifications over the notebook (and need the network).
    notification = dirs["settings"] / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "LEADLEX_", "IPYTHON"))}
    env.update(
        HOME=str(dirs["home"]), JUPYTER_CONFIG_DIR=str(dirs["config"]), JUPYTER_DATA_DIR=str(dirs["data"]),
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]), IPYTHONDIR=str(dirs["ipython"]),
        JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]), JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
        XDG_DATA_HOME=str(dirs["xdg"]), PYTHONUNBUFFERED="1",
    )
    port = free_port()
    log = base / "jupyterlab.log"
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip", "127.0.0.1", "--port", str(port),
        "--allow-root", "--IdentityProvider.token=", "--ServerApp.password=",
        "--ServerApp.disable_check_xsrf=True",  # the fixture's own REST calls (shutting kernels down)
        f"--LabApp.workspaces_dir={dirs['workspaces']}", "--notebook-dir", str(dirs["notebooks"]),
    ]
    with log.open("wb") as sink:
        server = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=dirs["notebooks"])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + LAB_START_SECONDS
        while True:
            if server.poll() is not None:
                pytest.fail(f"jupyter lab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
            try:
                _get(f"{url}/api/status", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer in {LAB_START_SECONDS} s:\n{log.read_text()[-3000:]}")
                time.sleep(0.25)
        yield Lab(url=url, root=dirs["notebooks"], env=env, log=log)
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def browser(lab: Lab) -> Iterator[Any]:
    # Module scope, not session: while sync Playwright is open, its event loop counts as running in
    # this thread, and the rest of the suite calls asyncio.run().
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
                                              env={**lab.env})
        try:
            yield launched
        finally:
            launched.close()


class Notebook:
    """One notebook open in JupyterLab: run cells, read outputs, click widget buttons."""

    def __init__(self, page: Any, lab: Lab, name: str, artifacts: Path) -> None:
        self.page, self.lab, self.name, self.artifacts = page, lab, name, artifacts

    # -- navigation -----------------------------------------------------------------------------

    def open(self) -> Notebook:
        self.page.goto(f"{self.lab.url}/lab/tree/{self.name}?reset", timeout=FIRST_LOAD_MS)
        self.page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=FIRST_LOAD_MS)
        self.wait_idle(KERNEL_READY_MS)
        return self

    def cells(self) -> Any:
        return self.page.locator(".jp-Notebook .jp-Cell")

    def cell(self, index: int) -> Any:
        return self.cells().nth(index)

    # -- running --------------------------------------------------------------------------------

    def run_all(self) -> None:
        """Run → Run All Cells, from the menu bar."""
        self.page.get_by_role("menuitem", name="Run", exact=True).click()
        self.page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()

    def run_cell(self, index: int) -> None:
        """Select cell ``index`` and press Shift+Enter."""
        self.cell(index).locator(".jp-InputPrompt").click()
        self.page.keyboard.press("Escape")
        self.page.keyboard.press("Shift+Enter")

    def run_cells(self, count: int, timeout_ms: int = 120_000) -> None:
        """Run the first ``count`` cells one by one, each to its end."""
        for index in range(count):
            self.run_cell(index)
            self.wait_cell_done(index, timeout_ms)

    def wait_idle(self, timeout_ms: int = 120_000) -> None:
        """Until the status bar says the kernel is idle (the toolbar's indicator says "idle" before
        there is a kernel at all)."""
        self.page.wait_for_function(
            "() => /ipykernel\\) \\| Idle/.test(document.querySelector('#jp-main-statusbar')?.innerText || '')",
            timeout=timeout_ms,
        )

    def wait_cell_done(self, index: int, timeout_ms: int = 120_000) -> None:
        """Until the cell's prompt shows an execution count (``[3]:``, not ``[*]:`` or ``[ ]:``)."""
        prompt = self.cell(index).locator(".jp-InputArea-prompt")
        deadline = time.monotonic() + timeout_ms / 1000
        while not re.fullmatch(r"\[\d+\]:", (prompt.inner_text() or "").strip()):
            if time.monotonic() > deadline:
                self.screenshot(f"timeout-cell-{index}")
                raise AssertionError(f"cell {index} did not finish in {timeout_ms} ms: {self.output_text(index)!r}")
            self.page.wait_for_timeout(100)

    def wait_all_done(self, timeout_ms: int = 120_000) -> None:
        for index in range(self.cells().count()):
            self.wait_cell_done(index, timeout_ms)

    # -- reading --------------------------------------------------------------------------------

    def output(self, index: int) -> Any:
        return self.cell(index).locator(".jp-Cell-outputArea")

    def output_text(self, index: int) -> str:
        return str(self.output(index).inner_text())

    def wait_text(self, text: str | re.Pattern[str], index: int | None = None, timeout_ms: int = 60_000) -> Any:
        """The first element under cell ``index``'s output (any cell's when None) that shows ``text``."""
        scope = self.output(index) if index is not None else self.page.locator(".jp-Notebook")
        found = scope.get_by_text(text).first
        try:
            found.wait_for(timeout=timeout_ms)
        except Exception:
            self.screenshot("timeout-text")
            raise
        return found

    # -- acting ---------------------------------------------------------------------------------

    def button(self, name: str | re.Pattern[str], index: int = 0) -> Any:
        return self.page.get_by_role("button", name=name).nth(index)

    def click(self, name: str | re.Pattern[str], index: int = 0, timeout_ms: int = 30_000) -> None:
        self.button(name, index).click(timeout=timeout_ms)

    def save(self) -> None:
        self.page.keyboard.press("Control+s")
        self.page.wait_for_timeout(500)

    def screenshot(self, label: str) -> Path:
        path = self.artifacts.with_name(f"{self.artifacts.name}-{label}.png")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def notebook_page(lab: Lab, browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context and page; its final state is saved as ``out/browser/<test>.png``."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    try:
        yield page
    finally:
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        context.close()
        lab.shutdown_kernels()


@pytest.fixture
def open_notebook(lab: Lab, notebook_page: Any, request: pytest.FixtureRequest) -> Any:
    """``open_notebook(cells, sandbox=None, files=None)``: write a notebook for this test and open it."""
    stem = re.sub(r"[^\w.-]+", "_", request.node.name)

    def open_(cells: Sequence[str], sandbox: Sandbox | None = None, files: dict[str, str] | None = None) -> Notebook:
        name = lab.write_notebook(f"{stem}.ipynb", cells, sandbox, files)
        return Notebook(notebook_page, lab, name, ARTIFACTS / stem).open()

    return open_


@pytest.fixture(autouse=True, scope="session")
def _clean_artifacts() -> None:
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
