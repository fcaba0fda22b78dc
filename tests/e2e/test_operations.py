"""Operating the service as an operator would (issue 15): the README's production
command with several API processes, health, metrics, logs, a bounded worker stop,
configuration errors and ``rescue doctor``. Every test starts real processes
against the run's PostgreSQL, Redis and S3 (tests/conftest.py)."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from media.s3server import free_port
from tests.conftest import worker_log
from tests.e2e.test_http_only import _chain, _token

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _maps(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return ""


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path, within: float = 180) -> dict:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
        try:
            answer = httpx.get(f"{base}/health/ready", timeout=5)
            if answer.status_code == 200:
                return dict(answer.json())
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"server not ready in {within}s:\n{log.read_text()[-4000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def production(
    tmp_path: Path,
) -> Iterator[tuple[str, dict[str, str], subprocess.Popen[bytes], Path]]:
    """The README's production command, verbatim but for host and port, with 2 workers."""
    port = free_port()
    metrics_dir = tmp_path / "run" / "prometheus"  # missing, like /run/x after a boot
    env = {
        **{k: v for k, v in os.environ.items() if k != "DB_POOL_MAX"},  # production: a pool
        "LOG_FORMAT": "json",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    log = tmp_path / "uvicorn.log"
    # Two more worker processes on the same queues, as the README starts them.
    workers_log = tmp_path / "workers.log"
    with open(workers_log, "wb") as out:
        workers = subprocess.Popen(
            [str(BIN / "rescue"), "worker", "--processes", "2", "--threads", "1"],
            env={
                **env,
                "WORKER_METRICS_PORT": str(free_port()),
                "dramatiq_prom_db": str(tmp_path / "worker-prometheus"),
            },
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                str(BIN / "uvicorn"),
                "--factory",
                "rescue.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "2",
                "--log-config",
                "rescue/logging.json",
                "--timeout-worker-healthcheck",
                "30",
            ],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield f"http://127.0.0.1:{port}", env, proc, log
        finally:
            _stop(proc)
            if workers.poll() is None:
                os.killpg(workers.pid, signal.SIGTERM)
                workers.wait(60)
            text = workers_log.read_text()
            assert text.count("Worker process is ready for action.") == 2, text[-3000:]


def test_production_command_serves_with_two_workers_metrics_and_clean_logs(production):
    base, env, proc, log = production
    ready = _wait_ready(base, proc, log)
    assert ready["status"] == "ready"
    assert {name for name, c in ready["checks"].items() if c["ok"]} == {
        "database",
        "object_store",
        "broker",
    }
    assert ready["photos_pending"] == 0
    workers = _children(proc.pid)
    assert len([p for p in workers if "rescue" in _maps(p) or _maps(p)]) >= 2
    # API processes never load face detection (dlib and its models: ~115 MB each).
    for pid in workers:
        assert "dlib" not in _maps(pid), f"API process {pid} loaded dlib"

    # A realistic flow: a user with a password, a failed login, the whole chain.
    password = "Correct-Horse-" + secrets.token_hex(4)
    token = _token(env, "ops-staff")
    subprocess.run(
        [str(BIN / "rescue"), "users", "set-password", "ops-staff"],
        input=f"{password}\n{password}\n",
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    wrong = httpx.post(
        f"{base}/auth/login", json={"username": "ops-staff", "password": "Wrong-" + password}
    )
    assert wrong.status_code == 401
    login = httpx.post(f"{base}/auth/login", json={"username": "ops-staff", "password": password})
    assert login.status_code == 201, login.text
    _chain(base, token)
    staff = {"Authorization": f"Bearer {token}"}
    contact = httpx.post(
        f"{base}/api/notices",
        headers=staff,
        json={
            "name": "孙八",
            "source": "family",
            "reporter_name": "孙九",
            "reporter_contact": "13912345678",
            "description": "身份证 110101199003071234",
        },
    )
    assert contact.status_code == 201, contact.text
    found = httpx.get(f"{base}/api/notices", params={"name": "孙八"}, headers=staff)
    assert found.status_code == 200
    answer = httpx.get(f"{base}/api/cases", headers={"Authorization": f"Bearer {token}"})
    request_id = answer.headers["x-request-id"]

    # Metrics: summed over both API processes (PROMETHEUS_MULTIPROC_DIR).
    metrics = ""
    for _ in range(4):  # each scrape lands on either process; both see every count
        metrics = httpx.get(f"{base}/metrics").text
        assert re.search(
            r'rescue_http_requests_total\{[^}]*path="/api/cases"[^}]*status_code="201"[^}]*\} 1\.0',
            metrics,
        ), metrics[:3000]
        assert 'rescue_login_failures_total{reason="bad_credentials"} 1.0' in metrics
    assert "rescue_http_request_duration_seconds_bucket" in metrics
    assert "rescue_photos_pending 0.0" in metrics
    assert "rescue_candidates_proposed 1.0" in metrics
    assert "rescue_alerts_overdue" in metrics

    time.sleep(6)  # past uvicorn's 5 s child health check: no child was replaced
    assert proc.poll() is None
    _stop(proc)
    text = log.read_text()
    assert text.count("Started server process") == 2, text[-3000:]
    assert "died" not in text, text[-3000:]
    assert "Traceback" not in text, text[-3000:]

    # One JSON object per line, with the request id (and the caller) in context.
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # all JSON
    requests = [r for r in lines if r.get("event") == "request"]
    assert requests
    assert all(r.get("request_id") for r in requests)
    mine = [r for r in requests if r["request_id"] == request_id]
    assert mine
    assert mine[0]["route"] == "/api/cases"
    assert mine[0].get("user_id")
    # Nothing personal or secret, in the API's log nor the worker's.
    everything = text + worker_log() + (log.parent / "workers.log").read_text()
    for forbidden in (
        "赵六",
        "钱七",
        "孙八",
        "孙九",
        "交警",
        "13912345678",
        "110101199003071234",
        password,
        token,
        "obama",
        "encoding",
    ):
        assert forbidden not in everything, forbidden


def test_ready_is_503_when_the_broker_is_down_and_doctor_says_how_to_fix(tmp_path):
    port, dead = free_port(), free_port()
    env = {
        **os.environ,
        "REDIS_URL": f"redis://127.0.0.1:{dead}/0",
        # Generous for this shared machine: a fresh PostgreSQL connection took > 1 s.
        "HEALTH_TIMEOUT_SECONDS": "10",
        "BROKER_TIMEOUT_SECONDS": "2",
        "DB_POOL_MAX": "0",
        "METRICS_TOKEN": "scrape-" + secrets.token_hex(8),
    }
    log = tmp_path / "uvicorn.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "uvicorn"), "--factory", "rescue.app:create_app", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{base}/health/live", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        answer = httpx.get(f"{base}/health/ready", timeout=10)
        assert answer.status_code == 503
        body = answer.json()
        assert body["status"] == "not_ready"
        assert body["checks"]["broker"]["ok"] is False
        assert body["checks"]["broker"]["error"]
        assert body["checks"]["database"]["ok"] is True, body
        assert body["checks"]["object_store"]["ok"] is True, body
        # With METRICS_TOKEN set, /metrics wants it (Prometheus' bearer credentials).
        assert httpx.get(f"{base}/metrics").status_code == 401
        wrong = {"Authorization": "Bearer not-the-token"}
        assert httpx.get(f"{base}/metrics", headers=wrong).status_code == 401
        scrape = {"Authorization": f"Bearer {env['METRICS_TOKEN']}"}
        metrics = httpx.get(f"{base}/metrics", headers=scrape)
        assert metrics.status_code == 200
        assert "rescue_photos_pending" in metrics.text
    finally:
        _stop(proc)

    doctor = subprocess.run(
        [str(BIN / "rescue"), "doctor"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    assert "PROBLEM broker" in doctor.stdout
    assert "fix: start Redis" in doctor.stdout
    good = subprocess.run(
        [str(BIN / "rescue"), "doctor"],
        env={**os.environ},
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert "PROBLEM" not in good.stdout
    # make test built the gallery's scan kernel: doctor names it and its path.
    from rescue.doctor import KERNEL_PATH_NAMES
    from rescue.matching import scan

    named = re.escape(KERNEL_PATH_NAMES[scan.path() or ""])
    expected = rf"^ok\s+gallery scan: native kernel \({named}\)$"
    assert re.search(expected, good.stdout, re.M), good.stdout


@pytest.mark.parametrize(
    ("variable", "value", "names"),
    [
        ("DATABASE_URL", "mysql://rescue:S3cret-pw@db/rescue", "DATABASE_URL=postgresql://"),
        ("PORT", "eighty", "PORT=8000"),
        ("S3_PUBLIC_URL", "192.168.1.20", "S3_PUBLIC_URL=http://"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT="),
    ],
)
@pytest.mark.parametrize("entry", ["cli", "api", "worker"])
def test_a_bad_setting_is_one_line_without_secret(variable, value, names, entry, tmp_path):
    env = {**os.environ, variable: value}
    command = {
        "cli": [str(BIN / "rescue"), "migrate"],
        "api": [str(BIN / "uvicorn"), "--factory", "rescue.app:create_app", "--port", "0"],
        "worker": [str(BIN / "python"), "-c", "import workers.broker"],
    }[entry]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert variable in lines[0], lines[0]
    assert names in lines[0], lines[0]
    assert "Traceback" not in done.stderr
    assert "S3cret-pw" not in done.stderr


def test_an_unreachable_database_is_one_line_without_secret(tmp_path):
    """CLI commands against a database that does not answer: one line that names
    it (password masked) and points at `rescue doctor`; never a traceback."""
    env = {**os.environ, "DATABASE_URL": "postgresql://rescue:S3cret-pw@127.0.0.1:1/rescue"}
    for command in (["migrate"], ["users", "create", "x", "--role", "admin"]):
        done = subprocess.run(
            [str(BIN / "rescue"), *command],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1, done.stdout + done.stderr
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, done.stderr
        assert "rescue doctor" in errors[0]
        assert "127.0.0.1:1" in errors[0]
        assert "Traceback" not in done.stderr
        assert "S3cret-pw" not in done.stderr + done.stdout


def test_doctor_before_migrate_says_to_migrate_and_checks_the_services(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "S3_ENDPOINT")},
        "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}",
        "DATA_DIR": str(tmp_path / "data"),
    }
    done = subprocess.run(
        [str(BIN / "rescue"), "doctor"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "UndefinedTable" not in done.stdout
    assert "no such table" not in done.stdout
    problems = [line for line in done.stdout.splitlines() if line.startswith("PROBLEM")]
    assert len(problems) == 1, done.stdout
    assert "migrations" in problems[0]
    assert "rescue migrate" in done.stdout
    assert "object store" in done.stdout
    assert "broker" in done.stdout


def test_worker_stops_within_the_bound_on_sigterm_to_its_group(tmp_path):
    """A worker busy with photos, sent SIGTERM on its whole process group (what
    systemd does), exits within WORKER_STOP_SECONDS (+ slack for this shared
    machine), and every photo is still processed: unfinished ones are handed back
    and a second worker finishes them."""
    import asyncio

    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.message import Message

    from rescue.devservices import DevServices  # noqa: F401 (documents where env comes from)
    from tests.conftest import _state

    services = _state["services"]
    namespace = f"stop-test-{secrets.token_hex(3)}"
    photo_ids = asyncio.run(_pending_photos(12))
    sender = RedisBroker(url=os.environ["REDIS_URL"], namespace=namespace)
    for photo_id in photo_ids:
        sender.enqueue(
            Message(
                queue_name="photos",
                actor_name="process_photo",
                args=(photo_id,),
                kwargs={},
                options={},
            )
        )
    bound = 3.0
    extra = {
        "BROKER_NAMESPACE": namespace,
        "WORKER_STOP_SECONDS": str(bound),
        "WORKER_METRICS_PORT": str(free_port()),
        "dramatiq_prom_db": str(tmp_path / "prom"),
        "LOG_FORMAT": "json",
    }
    worker = services.spawn(
        [str(BIN / "rescue"), "worker", "--processes", "1", "--threads", "2"],
        "stop-worker.log",
        extra,
    )
    # Wait until it is working (a photo leaves pending), then stop the group.
    deadline = time.monotonic() + 120
    while asyncio.run(_pending_count(photo_ids)) == len(photo_ids):
        assert worker.poll() is None, services.log("stop-worker.log")
        assert time.monotonic() < deadline, services.log("stop-worker.log")
        time.sleep(0.2)
    os.killpg(worker.pid, signal.SIGTERM)
    started = time.monotonic()
    worker.wait(timeout=bound + 30)
    took = time.monotonic() - started
    assert took < bound + 10, f"took {took:.1f}s:\n{services.log('stop-worker.log')}"
    assert not _group_alive(worker.pid), "a process of the worker's group is still running"

    # Whatever was not done is handed back, and a second worker does it.
    metrics_port = free_port()
    second = services.spawn(
        [str(BIN / "rescue"), "worker", "--processes", "1", "--threads", "2"],
        "stop-worker-2.log",
        {**extra, "WORKER_METRICS_PORT": str(metrics_port)},
    )
    deadline = time.monotonic() + 240
    while asyncio.run(_pending_count(photo_ids)):
        assert second.poll() is None, services.log("stop-worker-2.log")
        assert time.monotonic() < deadline, services.log("stop-worker.log")
        time.sleep(0.5)
    # Jobs by actor and outcome with durations, from the worker's own endpoint.
    job_metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    assert re.search(
        r'dramatiq_messages_total\{actor_name="process_photo",queue_name="photos"\} [1-9]',
        job_metrics,
    ), job_metrics[:2000]
    assert "dramatiq_message_duration_milliseconds_bucket" in job_metrics
    os.killpg(second.pid, signal.SIGTERM)
    second.wait(timeout=bound + 30)
    log = services.log("stop-worker.log", tail=100_000)
    assert "worker stopping" in log, log[-6000:]
    # Every line is JSON; the job's own lines carry its id and actor.
    records = [json.loads(line) for line in services.log("stop-worker-2.log", 100_000).splitlines()]
    jobs = [r for r in records if "face(s) found" in r["event"]]
    assert jobs, records[-20:]
    assert all(r.get("job_id") and r.get("actor") == "process_photo" for r in jobs)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


async def _pending_photos(count: int) -> list[int]:
    """``count`` pending photos of one notice, stored but not queued."""
    from rescue.notices.tables import Notice
    from rescue.photos.services import upload_photo
    from rescue.runtime import get_store
    from rescue.settings import get_settings
    from rescue.users.services import Principal, Role
    from tests.support import labels, photo

    rows = await Notice.insert(Notice(name="stop test", sex="male", source="police")).returning(
        Notice.id
    )
    notice_id = int(rows[0]["id"])
    by = Principal(user_id=0, username="ops-test", role=Role.admin, station="north", scope=("*",))

    async def keep(_: int) -> None:
        return None

    ids = []
    for row in [r for r in labels() if r["set"] == "lfw_subset"][:count]:
        out = await upload_photo(
            owner="notice",
            owner_id=notice_id,
            data=photo(row["path"]),
            taken_on=None,
            by=by,
            store=get_store(),
            limits=get_settings().upload,
            enqueue=keep,
        )
        ids.append(out.id)
    return ids


async def _pending_count(ids: list[int]) -> int:
    from rescue.photos.tables import Photo, PhotoStatus

    return int(
        await Photo.count().where(Photo.id.is_in(ids) & (Photo.status == PhotoStatus.pending.value))
    )
