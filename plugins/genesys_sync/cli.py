"""Command line behind the Makefile: a local Airflow home, the sandbox, ``sync`` and ``demo``.

    python -m genesys_sync.cli env                  # print the local Airflow environment
    python -m genesys_sync.cli sync --export PATH [--conf JSON] [--wait-for-export]
    python -m genesys_sync.cli demo                 # sandbox + one sync of the sample export
    python -m genesys_sync.cli standalone           # Airflow's components + the sandbox
    python -m genesys_sync.cli airflow -- dags list # any airflow command, same environment

Every run goes through the real DAG (``airflow dags test``); this module only prepares the
environment and prints the run's report. It imports nothing from Airflow.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from genesys_sync import run_lock, runs, settings
from genesys_sync.report import format_summary

DAG_ID = "genesys_user_sync"
CONN_ID = "genesys_cloud"
CONN_ENV = "AIRFLOW_CONN_GENESYS_CLOUD"
SANDBOX_SCIM_PATH = "/api/v2/scim/v2"
SANDBOX_PORT = 8089
SANDBOX_CLIENT = ("sandbox-client", "sandbox-secret")


def bin_path(name: str) -> str:
    """A console script of the running interpreter's environment (the project's venv)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def airflow_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the embedded Airflow: everything under ``$GENESYS_SYNC_HOME``."""
    env = dict(os.environ if base is None else base)
    home = settings.sync_home()
    env["GENESYS_SYNC_HOME"] = str(home)
    root = settings.PROJECT_ROOT
    defaults = {
        "AIRFLOW_HOME": str(home / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__API__HOST": "127.0.0.1",
        # The Genesys Cloud connection form's Test button (one local, trusted admin).
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "GE_USAGE_STATISTICS_ENABLED": "False",
        "GX_ANALYTICS_ENABLED": "False",
    }
    for key, value in defaults.items():
        env.setdefault(key, value)
    # `airflow standalone` starts its components as `airflow ...` from PATH: put the venv first.
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([venv_bin, env.get("PATH", os.defpath)])
    paths = [str(root / "plugins"), str(root / "dags")]
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def ensure_airflow_db(env: Mapping[str, str]) -> None:
    """Migrate the local metadata database once per Airflow version (a marker file remembers)."""
    from importlib.metadata import version

    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    marker = home / f".migrated-{version('apache-airflow')}"
    if env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") or not marker.exists():
        subprocess.run(
            [bin_path("airflow"), "db", "migrate"],
            env=dict(env),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        marker.touch()


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def sandbox(port: int = SANDBOX_PORT, data_file: Path | None = None) -> Iterator[dict[str, str]]:
    """Start the Genesys sandbox on 127.0.0.1 for the block; yield its connection as JSON env."""
    if _port_open(port):
        raise SystemExit(f"port {port} is busy: stop what runs there or set SANDBOX_PORT")
    data_file = data_file or settings.sync_home() / "sandbox" / "users.json"
    data_file.parent.mkdir(parents=True, exist_ok=True)
    log = (settings.sync_home() / "sandbox" / "sandbox.log").open("ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "genesys_sandbox",
            "--port",
            str(port),
            "--data-file",
            str(data_file),
        ],
        env=airflow_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(100):
            if _port_open(port):
                break
            if proc.poll() is not None:
                raise SystemExit(f"the sandbox exited; see {log.name}")
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port}"
        conn = {
            "conn_type": "genesys_cloud",
            "login": SANDBOX_CLIENT[0],
            "password": SANDBOX_CLIENT[1],
            "extra": {
                "base_url": f"{url}{SANDBOX_SCIM_PATH}",
                "token_url": f"{url}/oauth/token",
                "api_url": url,
            },
        }
        yield {CONN_ENV: json.dumps(conn)}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def newest_report(since: float) -> Path | None:
    found = runs.reports(since)
    return found[-1] if found else None


def _lease_note(env: Mapping[str, str]) -> str:
    """Which run holds the state's lease, for the message of a run that met a locked home."""
    import sqlalchemy as sa

    engine = sa.create_engine(env.get("GENESYS_SYNC_STATE_URL") or settings.state_url())
    try:
        lease = run_lock.current_lease(engine)
    finally:
        engine.dispose()
    return f" The lock's run: {lease.describe()}." if lease else ""


def preflight(
    conf: Mapping, env: Mapping[str, str], logical_date: str | None, wait_for_export: bool
) -> str | None:
    """Why a ``make sync`` run must not start, or None: a param ``export`` the allow-list
    refuses, a config that does not load, or (unless ``wait_for_export``) a local export that
    is not there. Checked before Airflow starts, so a typo fails in a second, not after
    ``export.wait_timeout_minutes`` in the sensor."""
    from datetime import datetime

    from genesys_sync.config import ConfigError, load_config
    from genesys_sync.export import (
        EXPORT_ENV,
        ExportNotAllowed,
        export_exists,
        is_remote,
        resolve_run_location,
    )

    param = conf.get("export")
    if param is not None and not isinstance(param, str):
        return "the run param 'export' must be a string (a path or URI)"
    try:
        day = datetime.fromisoformat(logical_date) if logical_date else None
    except ValueError:
        return f"--logical-date {logical_date!r} is not a date (YYYY-MM-DD)"
    try:
        config = load_config(env.get("GENESYS_SYNC_CONFIG") or None)
        location = resolve_run_location(config.export, day, param=param, environ=env)
    except (ConfigError, ExportNotAllowed) as exc:
        return str(exc)
    if wait_for_export or is_remote(location) or export_exists(location):
        return None
    if param:
        source = "the run param 'export'"
    elif env.get(EXPORT_ENV, "").strip():
        source = f"EXPORT / ${EXPORT_ENV}"
    else:
        source = f"export.location in {config.source}"
    return (
        f"the HRIS export was not found at {location} (from {source}, for "
        f"{day.date() if day else 'today (UTC)'}); nothing was started. Check the path, or "
        "pass --wait-for-export (GENESYS_SYNC_WAIT_FOR_EXPORT=1) to wait for it as a "
        "scheduled run does (export.wait_timeout_minutes)."
    )


def run_sync(
    export: str | None,
    conf: Mapping | None = None,
    extra_env: Mapping[str, str] | None = None,
    logical_date: str | None = None,
    wait_for_export: bool = False,
) -> int:
    """One run of the DAG through ``airflow dags test``; print its summary; 0 only on success.

    ``export`` is the operator's own choice (``make sync EXPORT=...``): it becomes the
    configured location (``$HRIS_EXPORT_PATH``), not the run param ``export``, so any path the
    operator names is read; the param stays held to ``export.allowed_locations``. The run
    does not start (exit 2) when ``preflight`` finds a reason.
    """
    from genesys_sync.export import EXPORT_ENV

    env = airflow_env()
    env.update(extra_env or {})
    if export:
        env[EXPORT_ENV] = export if "://" in export else str(Path(export).resolve())
    conf = dict(conf or {})
    problem = preflight(conf, env, logical_date, wait_for_export)
    if problem:
        print(f"FAILED: {problem}", file=sys.stderr)
        return 2
    # `airflow dags test` runs triggers inline: the deferral race the start delay guards
    # against cannot happen there.
    env.setdefault(settings.TRIGGER_START_DELAY_ENV, "0")
    ensure_airflow_db(env)
    conf.setdefault("wait_for_approval", False)  # a CLI run holds and reports, never waits
    cmd = [bin_path("airflow"), "dags", "test", DAG_ID]
    if logical_date:
        cmd.append(logical_date)
    cmd += ["-c", json.dumps(conf)]
    log_path = settings.sync_home() / "logs" / f"dags-test-{int(time.time())}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.time() - 1
    try:
        with run_lock.home_lock(settings.sync_home() / "sync.lock") as holder:
            env[run_lock.HOLDER_ENV] = holder  # the run's lease names this process
            with log_path.open("wb") as log:
                result = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    except run_lock.HomeLocked as exc:
        print(f"FAILED: {exc}{_lease_note(env)}", file=sys.stderr)
        return 3
    report_path = newest_report(started)
    found = runs.read_optional(report_path) if report_path is not None else None
    if found is None:
        print(f"The run wrote no report; Airflow's output is in {log_path}", file=sys.stderr)
        return result.returncode or 1
    report = runs.Report.from_dict(found, report_path)
    print(format_summary(report.to_dict()))
    print(f"  airflow log     {log_path}")
    ok = result.returncode == 0 and report.status == "success"
    if not ok:
        reason = report.failure_reason or f"airflow exited with {result.returncode}"
        print(f"FAILED: {reason}", file=sys.stderr)
    return 0 if ok else 1


#: What `airflow standalone` runs, started here so that every server binds 127.0.0.1: the
#: scheduler's and triggerer's log servers (which bind every interface) are not needed when
#: all components share one machine and one log folder.
COMPONENTS = (
    ("api-server",),
    ("scheduler", "--skip-serve-logs"),
    ("dag-processor",),
    ("triggerer", "--skip-serve-logs"),
)


def _is_sandbox(conn: Mapping) -> bool:
    base_url = str((conn.get("extra_dejson") or conn.get("extra") or {}).get("base_url") or "")
    return base_url.startswith("http://127.0.0.1:") and base_url.endswith(SANDBOX_SCIM_PATH)


def ensure_connection(env: Mapping[str, str], conn: Mapping) -> str:
    """Store ``conn`` (the sandbox's) as the ``genesys_cloud`` connection in Airflow's database,
    unless a connection of the user's own is there: that one is never replaced. Says which."""
    airflow = bin_path("airflow")
    run_env = {k: v for k, v in env.items() if k != CONN_ENV}
    found = subprocess.run(
        [airflow, "connections", "get", CONN_ID, "-o", "json"],
        env=run_env,
        capture_output=True,
        text=True,
    )
    if found.returncode == 0:
        existing = json.loads(found.stdout[found.stdout.index("[") :])[0]
        if not _is_sandbox(existing):
            return "yours, kept"
        subprocess.run(
            [airflow, "connections", "delete", CONN_ID],
            env=run_env,
            check=True,
            capture_output=True,
        )
    subprocess.run(
        [airflow, "connections", "add", CONN_ID, "--conn-json", json.dumps(conn)],
        env=run_env,
        check=True,
        capture_output=True,
    )
    return "the sandbox"


def run_standalone(port: int) -> int:
    """The sandbox plus Airflow's components (api-server on 127.0.0.1:8080) until Ctrl-C."""
    env = airflow_env()
    env.setdefault("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
    ensure_airflow_db(env)
    logs = settings.sync_home() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    with sandbox(port) as conn_env:
        # In Airflow's database, not the environment: the UI shows it and edits take effect.
        connection = ensure_connection(env, json.loads(conn_env[CONN_ENV]))
        try:
            for component in COMPONENTS:
                out = (logs / f"{component[0]}.log").open("ab")
                procs.append(
                    subprocess.Popen(
                        [bin_path("airflow"), *component],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
            passwords = Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
            print(f"Sandbox:    http://127.0.0.1:{port} (development only)")
            print(f"Connection: {CONN_ID} ({connection}; Admin > Connections)")
            print("Airflow UI: http://127.0.0.1:8080  user admin, password in")
            print(f"            {passwords} (written when the api-server starts)")
            print(f"Logs:       {logs}/<component>.log    Stop with Ctrl-C.")
            while all(p.poll() is None for p in procs):
                time.sleep(1)
            failed = [c[0] for c, p in zip(COMPONENTS, procs, strict=True) if p.poll()]
            print(f"stopped: {', '.join(failed) or 'a component'} exited; see {logs}")
            return 1
        except KeyboardInterrupt:
            return 0
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()


def main(argv: list[str] | None = None) -> int:
    # Owner-only files, whatever the caller's umask: the Airflow home and its database, the
    # logs, the state, the audit trail and the run artifacts, here and in every subprocess.
    os.umask(0o077)
    parser = argparse.ArgumentParser(prog="genesys_sync.cli", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("env", help="print the local Airflow environment variables")
    p_sync = sub.add_parser("sync", help="one sync of an export through the DAG")
    p_sync.add_argument("--export", help="path or URI of the export (default: the config's)")
    p_sync.add_argument("--conf", default="", help="run params as JSON")
    p_sync.add_argument("--logical-date", help="the run's logical date (YYYY-MM-DD)")
    p_sync.add_argument("--sandbox", action="store_true", help="start the sandbox for the run")
    p_sync.add_argument(
        "--wait-for-export",
        action="store_true",
        default=os.environ.get("GENESYS_SYNC_WAIT_FOR_EXPORT", "") not in ("", "0", "false"),
        help="let the DAG wait for a missing export (export.wait_timeout_minutes) instead of "
        "failing at once ($GENESYS_SYNC_WAIT_FOR_EXPORT=1 sets it too)",
    )
    p_demo = sub.add_parser("demo", help="sandbox + one sync of the bundled sample export")
    p_demo.add_argument(
        "--port", type=int, default=int(os.environ.get("SANDBOX_PORT", SANDBOX_PORT))
    )
    p_alone = sub.add_parser("standalone", help="Airflow's components plus the sandbox")
    p_alone.add_argument(
        "--port", type=int, default=int(os.environ.get("SANDBOX_PORT", SANDBOX_PORT))
    )
    p_air = sub.add_parser("airflow", help="run an airflow command in the local environment")
    p_air.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    if args.command == "env":
        for key, value in sorted(airflow_env({}).items()):
            print(f"export {key}={value}")
        return 0
    if args.command == "sync":
        try:
            conf = json.loads(args.conf) if args.conf.strip() else {}
        except json.JSONDecodeError as exc:
            print(f"CONF is not valid JSON: {exc}", file=sys.stderr)
            return 2
        if not isinstance(conf, dict):
            print("CONF must be a JSON object, e.g. '{\"dry_run\": true}'", file=sys.stderr)
            return 2
        wait = args.wait_for_export
        if args.sandbox:
            with sandbox() as conn_env:
                return run_sync(args.export, conf, conn_env, args.logical_date, wait)
        return run_sync(args.export, conf, logical_date=args.logical_date, wait_for_export=wait)
    if args.command == "demo":
        sample = settings.INCLUDE_DIR / "sample" / "hris_export.csv"
        with sandbox(args.port) as conn_env:
            return run_sync(str(sample), {}, conn_env)
    if args.command == "standalone":
        return run_standalone(args.port)
    if args.command == "airflow":
        env = airflow_env()
        ensure_airflow_db(env)
        extra = args.args[1:] if args.args[:1] == ["--"] else args.args
        os.execvpe(bin_path("airflow"), [bin_path("airflow"), *extra], env)
    return 2


if __name__ == "__main__":
    sys.exit(main())
