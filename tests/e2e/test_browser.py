"""The Airflow UI in a real browser (Debian's Chromium driven by Playwright), as ``make airflow``
starts it: log in, trigger a dry run from the params form, open the run's plan and report from
the run's **Sync results** tab, see the run list and its chart, add a Genesys Cloud connection
through its form and press **Test**.

One Airflow start, one dry run. Each step leaves a screenshot in a temporary folder, or in
``$GENESYS_SYNC_SCREENSHOTS`` (``GENESYS_SYNC_SCREENSHOTS=docs/screenshots`` refreshes the
README's). Needs ``/usr/bin/chromium`` (``apt-get install chromium``; ``.ci/run`` installs it)
and the ``playwright`` package; Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import pytest

from tests.e2e.harness import ROOT, fast_config

pytestmark = pytest.mark.e2e

CHROMIUM = Path(os.environ.get("GENESYS_SYNC_CHROMIUM", "/usr/bin/chromium"))
DAG_ID = "genesys_user_sync"
CONN_ID = "genesys_browser_test"
#: Patience for a page element or a run; the test waits for content, never for a time.
UI_TIMEOUT_MS = 60_000
RUN_TIMEOUT_S = 600
START_TIMEOUT_S = 300


def _need_browser() -> None:
    """Skip without Chromium or Playwright, except in CI, where that is a failure."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("the playwright package (requirements-dev.txt)")
    if missing:
        message = "browser test needs " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Airflow:
    url: str
    sandbox_url: str
    password: str
    home: Path
    log: Path


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def _token(url: str, password: str) -> str | None:
    body = json.dumps({"username": "admin", "password": password}).encode()
    request = urllib.request.Request(
        f"{url}/auth/token", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())["access_token"]
    except (OSError, ValueError, KeyError):
        return None


def _wait(what: str, check, proc: subprocess.Popen, log: Path, timeout: float = START_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"make airflow exited while waiting for {what}:\n{log.read_text()[-3000:]}")
        found = check()
        if found:
            return found
        time.sleep(1)
    pytest.fail(f"timed out waiting for {what}; see {log}")


@pytest.fixture(scope="module")
def airflow(tmp_path_factory) -> Iterator[Airflow]:
    """``make airflow`` (``genesys_sync.cli standalone``) in a home of its own, on free ports,
    with no scheduled run (the cron schedule off: only the test's run happens)."""
    _need_browser()
    base = tmp_path_factory.mktemp("browser")
    home = base / "home"
    home.mkdir()
    api_port, sandbox_port = _free_port(), _free_port()
    while sandbox_port == api_port:
        sandbox_port = _free_port()
    url = f"http://127.0.0.1:{api_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env.update(
        {
            "GENESYS_SYNC_HOME": str(home),
            "GENESYS_SYNC_CONFIG": str(fast_config(home)),  # no Data Docs: a shorter run
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "dags")]),
        }
    )
    log = base / "make-airflow.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "genesys_sync.cli", "standalone", "--port", str(sandbox_port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # one process group: the CLI and every component
        )
    try:
        passwords = home / "airflow" / "simple_auth_manager_passwords.json.generated"

        def password() -> str | None:
            if _get(f"{url}/api/v2/monitor/health")[0] != 200 or not passwords.exists():
                return None
            return json.loads(passwords.read_text()).get("admin")

        secret = _wait("the api-server and its admin password", password, proc, log)
        token = _wait("a token", lambda: _token(url, secret), proc, log)
        _wait(
            f"the DAG {DAG_ID} to be parsed",
            lambda: _get(f"{url}/api/v2/dags/{DAG_ID}", token)[0] == 200,
            proc,
            log,
        )
        yield Airflow(url, f"http://127.0.0.1:{sandbox_port}", secret, home, log)
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """Ctrl-C to the process group (the CLI stops its components), then SIGKILL if need be."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=60)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # whatever of the group is left
    proc.wait(timeout=10)


@pytest.fixture
def shots(tmp_path: Path):
    """``shot(page, name)``: a PNG of the page into ``$GENESYS_SYNC_SCREENSHOTS`` or tmp."""
    folder = Path(os.environ.get("GENESYS_SYNC_SCREENSHOTS") or tmp_path / "screenshots")
    if not folder.is_absolute():
        folder = ROOT / folder
    folder.mkdir(parents=True, exist_ok=True)
    taken: list[Path] = []

    def shot(page, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path))
        taken.append(path)
        return path

    shot.taken = taken
    return shot


def test_dry_run_results_and_a_genesys_connection_in_the_browser(airflow: Airflow, shots):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)
            _log_in(page, airflow, shots)
            run_id = _trigger_dry_run(page, airflow, shots)
            _wait_for_run(page, airflow, run_id)
            _open_plan_and_report(page, airflow, run_id, shots)
            _run_list(page, airflow, run_id, shots)
            _add_and_test_connection(page, airflow, shots)
        finally:
            browser.close()
    assert len(shots.taken) == 9


def _log_in(page, airflow: Airflow, shots) -> None:
    from playwright.sync_api import expect

    page.goto(f"{airflow.url}/")
    expect(page).to_have_url(re.compile(r"/auth/login"))
    page.locator("input[name=username]").fill("admin")
    page.locator("input[name=password]").fill(airflow.password)
    shots(page, "01-login")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Admin")).to_be_visible()
    # The plugin loaded without error (its pages, the dag run tab, the Test button's fix).
    assert page.request.get(f"{airflow.url}/api/v2/plugins/importErrors").json() == {
        "import_errors": [],
        "total_entries": 0,
    }


def _trigger_dry_run(page, airflow: Airflow, shots) -> str:
    from playwright.sync_api import expect

    page.goto(f"{airflow.url}/dags/{DAG_ID}")
    expect(page.get_by_text(DAG_ID).first).to_be_visible()
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text(f"Trigger Dag - {DAG_ID}")).to_be_visible()
    dialog.get_by_role("button", name="Run", exact=True).click()  # the params' "Run" section
    dry_run = dialog.locator("input[name=element_dry_run]")
    expect(dialog.get_by_text("Plan only; write nothing to Genesys Cloud.")).to_be_visible()
    dialog.locator("label").filter(has=page.locator("input[name=element_dry_run]")).click()
    expect(dry_run).to_be_checked()
    shots(page, "02-trigger-dry-run")
    dialog.get_by_role("button", name="Trigger", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/dags/{DAG_ID}/runs/manual__"))
    return unquote(page.url.rsplit("/runs/", 1)[1].split("?")[0])


def _wait_for_run(page, airflow: Airflow, run_id: str) -> None:
    from playwright.sync_api import expect

    api = f"{airflow.url}/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}"
    deadline = time.monotonic() + RUN_TIMEOUT_S
    state = None
    while time.monotonic() < deadline:
        state = page.request.get(api).json().get("state")  # the browser's session cookie
        if state in ("success", "failed"):
            break
        time.sleep(2)
    assert state == "success", f"the dry run ended {state}; see {airflow.log}"
    assert page.request.get(api).json()["conf"]["dry_run"] is True  # as ticked in the form
    # A dry run writes nothing: no event on the organisation's users asset.
    events = page.request.get(f"{airflow.url}/api/v2/assets/events?source_dag_id={DAG_ID}")
    assert events.json()["total_entries"] == 0
    aliases = page.request.get(f"{airflow.url}/api/v2/assets/aliases").json()["asset_aliases"]
    assert "genesys_users" in [a["name"] for a in aliases]
    page.reload()
    expect(page.get_by_text("Success").first).to_be_visible()


def _open_plan_and_report(page, airflow: Airflow, run_id: str, shots) -> None:
    from playwright.sync_api import expect

    page.get_by_text("Sync results", exact=True).click()  # the plugin's tab on the dag run
    frame = page.frame_locator('iframe[title="Sync results"]')
    expect(frame.get_by_role("heading", name=f"Sync run {run_id}")).to_be_visible()
    expect(frame.get_by_text("dry run", exact=True)).to_be_visible()
    expect(frame.get_by_role("row", name="rejected by the gate 2")).to_be_visible()
    expect(frame.get_by_role("heading", name="Rejected rows (2)")).to_be_visible()
    shots(page, "03-sync-results-tab")

    frame.get_by_role("link", name="Plan", exact=True).click()
    expect(frame.get_by_role("heading", name=f"Sync plan for run {run_id}")).to_be_visible()
    expect(frame.get_by_text("Dry run (param dry_run): nothing is written.")).to_be_visible()
    expect(frame.get_by_role("heading", name="create (50)")).to_be_visible()
    shots(page, "04-plan")

    frame.get_by_role("link", name="Back to the run").click()
    frame.get_by_role("link", name="Report", exact=True).click()
    expect(frame.get_by_role("heading", name=f"Report of sync run {run_id}")).to_be_visible()
    expect(frame.get_by_role("heading", name="report.json")).to_be_visible()
    expect(frame.locator("pre")).to_contain_text('"dry_run": true')
    expect(frame.locator("pre")).to_contain_text('"status": "success"')
    shots(page, "05-report")


def _run_list(page, airflow: Airflow, run_id: str, shots) -> None:
    from playwright.sync_api import expect

    page.goto(f"{airflow.url}/plugin/genesys-sync")  # Browse > Genesys sync
    frame = page.frame_locator("iframe")
    expect(frame.get_by_role("heading", name="Genesys user sync: runs")).to_be_visible()
    expect(frame.get_by_role("link", name=run_id)).to_be_visible()
    expect(frame.locator('svg[aria-label="requests"]')).to_be_visible()
    shots(page, "06-sync-runs")


def _add_and_test_connection(page, airflow: Airflow, shots) -> None:
    from playwright.sync_api import expect

    page.goto(f"{airflow.url}/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("input[name=connection_id]").fill(CONN_ID)
    kind = dialog.get_by_role("combobox").first
    kind.click()
    kind.fill("Genesys")
    page.get_by_role("option", name="Genesys Cloud").click()
    expect(dialog.get_by_text("OAuth client secret")).to_be_visible()  # the relabelled form
    dialog.locator("input[name=login]").fill("sandbox-client")
    dialog.locator("input[name=password]").fill("sandbox-secret")
    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    dialog.locator("[name=element_base_url]").fill(f"{airflow.sandbox_url}/api/v2/scim/v2")
    dialog.locator("[name=element_token_url]").fill(f"{airflow.sandbox_url}/oauth/token")
    shots(page, "07-genesys-connection-form")
    dialog.get_by_role("button", name="Save").click()
    row = page.get_by_role("row").filter(has_text=CONN_ID)
    expect(row).to_contain_text("genesys_cloud")
    created = page.get_by_text("Create Connection Request Submitted")
    expect(created).to_be_visible()
    shots(page, "08-connections")
    page.mouse.move(5, 5)  # a toast under the pointer stays
    expect(created).to_be_hidden()  # its toast gone, the test's shows alone
    row.get_by_role("button", name="Test Connection").click()
    expect(page.get_by_text("Test Connection Successful")).to_be_visible()
    expect(page.get_by_text("users are readable").first).to_be_visible()  # the hook's message
    shots(page, "09-connection-test")
