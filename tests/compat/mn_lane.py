#!/usr/bin/env python3
"""Compatibility lane: drive the published `mn` CLI (mirrorneuron-cli 1.2.32) against a real
`mirror-neuron serve` and check exit codes and the JSON it prints.

Usage: mn_lane.py MIRROR_NEURON_BIN MN_BIN
Prints one line per check and a closing "N passed, M failed" line; exits 1 on any failure.
"""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOKEN = "lane-operator-token"
RESULTS = {"passed": 0, "failed": 0}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check(name, ok, detail=""):
    RESULTS["passed" if ok else "failed"] += 1
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f"  -- {detail}" if detail and not ok else ""), flush=True)
    return ok


class Lane:
    def __init__(self, server_bin, mn_bin):
        self.tmp = Path(tempfile.mkdtemp(prefix="mn-lane-"))
        self.port = free_port()
        self.mn_bin = mn_bin
        home = self.tmp / "home"
        home.mkdir()
        server_env = dict(os.environ)
        server_env.update(
            MN_HOME=str(self.tmp / "server-home"),
            MN_GRPC_PORT=str(self.port),
            MN_GRPC_AUTH_TOKEN=TOKEN,
            MN_NODE_NAME="lane-node",
            MN_TEMP_DIR=str(self.tmp / "runs"),
        )
        server_env.pop("MN_REDIS_URL", None)
        self.server_log = open(self.tmp / "serve.log", "w")
        self.server = subprocess.Popen([server_bin, "serve"], env=server_env, stdout=self.server_log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit("mirror-neuron serve did not start; see " + str(self.tmp / "serve.log"))
        self.env = dict(os.environ)
        self.env.update(
            HOME=str(home),
            MN_HOME=str(home / ".mn"),
            MN_GRPC_TARGET=f"127.0.0.1:{self.port}",
            MN_GRPC_AUTH_TOKEN=TOKEN,
            MN_DISABLE_UPDATE_CHECK="1",
            MN_CLI_OUTPUT="plain",
            NO_COLOR="1",
            COLUMNS="200",
            MN_JOB_MONITOR_DISABLE_API_STREAM="1",
            MN_API_BASE_URL="http://127.0.0.1:9/api/v1",
            MN_RUN_BACKGROUND_EVENT_RELAY="0",
        )
        # `mn job clear/cancel` try docker for local sandbox cleanup; a no-op shim stands in.
        shim = self.tmp / "shim"
        shim.mkdir()
        (shim / "docker").write_text("#!/bin/sh\nexit 0\n")
        (shim / "docker").chmod(0o755)
        self.env["PATH"] = f"{shim}:{self.env['PATH']}"

    def mn(self, *args, env=None, timeout=60):
        e = dict(self.env)
        e.update(env or {})
        p = subprocess.run([self.mn_bin, *args], env=e, cwd=self.tmp, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def mn_json(self, *args):
        code, out, err = self.mn(*args)
        try:
            return code, json.loads(out), err
        except ValueError:
            return code, None, f"not JSON: {out[:300]!r} {err[:300]!r}"

    def close(self):
        self.server.terminate()
        try:
            self.server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.server.kill()
        self.server_log.close()


def slow_bundle(root: Path) -> Path:
    """An executor that sleeps, so pause/resume/cancel catch the job running."""
    b = root / "slow"
    (b / "payloads").mkdir(parents=True)
    (b / "manifest.json").write_text(json.dumps({
        "manifest_version": "1.0",
        "graph_id": "lane_slow",
        "entrypoints": ["wait"],
        "nodes": [
            {"node_id": "wait", "agent_type": "executor", "config": {"command": ["sleep", "30"], "output_message_type": "done"}},
            {"node_id": "sink", "agent_type": "aggregator", "config": {"complete_on_message": True}},
        ],
        "edges": [{"from_node": "wait", "to_node": "sink", "message_type": "done"}],
    }))
    return b


def service_bundle(root: Path) -> Path:
    """A running job that provides `lane-api` (no checks: passing once registered)."""
    b = root / "service"
    (b / "payloads").mkdir(parents=True)
    (b / "manifest.json").write_text(json.dumps({
        "manifest_version": "1.0",
        "graph_id": "lane_service",
        "job_type": "service",
        "entrypoints": ["wait"],
        "services": [{"name": "lane-api", "address": "127.0.0.1", "port": 9, "tags": ["http"]}],
        "nodes": [
            {"node_id": "wait", "agent_type": "executor", "config": {"command": ["sleep", "60"], "output_message_type": "done"}},
        ],
        "edges": [],
    }))
    return b


def service_checks(lane):
    code, out, err = lane.mn("job", "create", str(service_bundle(lane.tmp)), "--job-id", "lane-service")
    check("job create (service) exits 0", code == 0, err or out)
    code, out, err = lane.mn("job", "start", "lane-service")
    run = field(out, "Run ID")
    check("job start (service) prints a run id", code == 0 and bool(run), err or out)
    if not run:
        return
    wait_status(lane, run, {"running"}, 30)
    listed = None
    deadline = time.time() + 20
    while time.time() < deadline:
        code, listed, err = lane.mn_json("service", "list")
        if code == 0 and listed and listed.get("count"):
            break
        time.sleep(0.3)
    names = [s.get("name") for s in (listed or {}).get("services", [])]
    check("service list prints the registered service", code == 0 and names == ["lane-api"], err or str(listed)[:300])
    code, data, err = lane.mn_json("service", "resolve", "lane-api", "--tag", "http")
    check("service resolve finds the passing instance", code == 0 and (data or {}).get("count") == 1, err or str(data)[:300])
    code, data, err = lane.mn_json("service", "resolve", "lane-api", "--tag", "grpc")
    check("service resolve with a tag it lacks finds none", code == 0 and (data or {}).get("count") == 0, err or str(data)[:300])
    lane.mn("job", "cancel", run)
    check("the service run is cancelled", wait_status(lane, run, {"cancelled"}, 10) == "cancelled")


def deployment_bundle(root: Path, name: str, sleep: str) -> Path:
    """A service (a router starting an executor that sleeps); `sleep` is the executor's only
    change between versions. A short min_healthy_ms and agent-state health settle it fast."""
    b = root / name
    (b / "payloads").mkdir(parents=True)
    (b / "manifest.json").write_text(json.dumps({
        "manifest_version": "1.0",
        "graph_id": "lane_deploy",
        "type": "service",
        "entrypoints": ["start"],
        "nodes": [
            {"node_id": "start", "agent_type": "router", "config": {"emit_type": "go"}},
            {"node_id": "hold", "agent_type": "executor", "config": {"command": ["sleep", sleep], "output_message_type": "done"}},
        ],
        "edges": [{"from_node": "start", "to_node": "hold", "message_type": "go"}],
        "policies": {"update": {"min_healthy_ms": 200, "health_check": "agent_states"}},
    }))
    return b


def wait_deployment(lane, key, want_status, want_version, seconds=60):
    """Polls `mn deployment status` until the record has the status and version."""
    deadline = time.time() + seconds
    data = None
    while time.time() < deadline:
        code, data, _ = lane.mn_json("deployment", "status", key)
        if code == 0 and isinstance(data, dict) and data.get("status") == want_status and data.get("version") == want_version:
            return data
        time.sleep(0.3)
    return data


def deployment_checks(lane):
    """Deploy, list, a canary update, promote and rollback, rolled out by `serve`'s leader."""
    key = "lane-dep"
    v1 = deployment_bundle(lane.tmp, "deploy-v1", "120")
    v2 = deployment_bundle(lane.tmp, "deploy-v2", "121")
    code, out, err = lane.mn("deployment", "deploy", str(v1), "--key", key, "--wait")
    check("deployment deploy --wait exits 0 and names the key", code == 0 and field(out, "Key") == key, err or out)
    data = wait_deployment(lane, key, "successful", "1")
    check("deployment status shows version 1 successful", isinstance(data, dict) and data.get("status") == "successful", str(data)[:300])
    code, data, err = lane.mn_json("deployment", "list")
    keys = [d.get("deployment_key") for d in (data or {}).get("data", [])] if isinstance(data, dict) else []
    check("deployment list includes the key", code == 0 and key in keys, err or str(data)[:300])
    code, out, err = lane.mn("deployment", "deploy", str(v2), "--key", key, "--strategy", "canary", "--canary", "1")
    check("deployment deploy (canary update) exits 0", code == 0, err or out)
    data = wait_deployment(lane, key, "awaiting_promotion", "2")
    check("the canary update awaits promotion", isinstance(data, dict) and data.get("status") == "awaiting_promotion", str(data)[:300])
    code, out, err = lane.mn("deployment", "promote", key)
    check("deployment promote exits 0", code == 0, err or out)
    data = wait_deployment(lane, key, "successful", "2")
    check("the promoted update is version 2, successful", isinstance(data, dict) and data.get("status") == "successful", str(data)[:300])
    code, out, err = lane.mn("deployment", "rollback", key, "--version", "1", "--reason", "test")
    check("deployment rollback exits 0", code == 0, err or out)
    data = wait_deployment(lane, key, "successful", "3")
    check("the rollback is version 3, successful", isinstance(data, dict) and data.get("status") == "successful", str(data)[:300])
    code, out, err = lane.mn("deployment", "status", "no-such-deployment")
    check("an unknown deployment exits 2 (NOT_FOUND)", code == 2, f"exit {code} {err[:200]}")
    # The service's sleeping executor would outlive the lane.
    job = (data or {}).get("job_id") if isinstance(data, dict) else None
    if job:
        lane.mn("job", "cancel", job)


def field(text, label):
    """A `Label: value` line as `mn` prints it ("Run ID: x"), or a JSON-ish `key: value`."""
    m = re.search(rf"(?im)^\s*{label}\s*:\s*\"?([A-Za-z0-9._:-]+)", text)
    return m.group(1) if m else None


def wait_status(lane, run_id, want, seconds=60):
    deadline = time.time() + seconds
    status = None
    while time.time() < deadline:
        code, data, _ = lane.mn_json("job", "status", run_id)
        if code == 0 and isinstance(data, dict):
            job = data.get("job", data)
            status = job.get("status")
            if status in want:
                return status
        time.sleep(0.5)
    return status


def main():
    # Absolute: `mn` runs in a scratch directory.
    server_bin, mn_bin = (str(Path(a).resolve()) for a in sys.argv[1:3])
    lane = Lane(server_bin, mn_bin)
    try:
        run_checks(lane)
    finally:
        lane.close()
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    sys.exit(1 if RESULTS["failed"] else 0)


def run_checks(lane):
    # v2: create a stable job from a bundle, start a run, wait for it.
    code, out, err = lane.mn("job", "create", str(REPO / "examples/research_flow"), "--job-id", "lane-research")
    check("job create exits 0", code == 0, err or out)
    code, out, err = lane.mn("job", "start", "lane-research")
    check("job start exits 0", code == 0, err or out)
    run_id = field(out, "Run ID")
    check("job start prints a run id", bool(run_id), out)
    if run_id:
        status = wait_status(lane, run_id, {"completed", "failed", "cancelled"})
        check("the run completes", status == "completed", f"status {status}")
        code, data, err = lane.mn_json("job", "status", run_id)
        job = (data or {}).get("job", data or {})
        check("job status prints the job JSON with its result", code == 0 and job.get("result", {}).get("agent_id") == "reviewer", err or str(data)[:300])
        code, data, err = lane.mn_json("job", "dead-letters", run_id)
        check("job dead-letters prints JSON", code == 0 and data is not None, err)

    code, out, err = lane.mn("job", "list")
    check("job list exits 0 and shows the run", code == 0 and "research_flow_v1" in out, err or out[:300])

    # v1 submit path with a slow job: pause, resume, cancel.
    code, out, err = lane.mn("job", "create", str(slow_bundle(lane.tmp)), "--job-id", "lane-slow")
    check("job create (slow) exits 0", code == 0, err or out)
    code, out, err = lane.mn("job", "start", "lane-slow")
    slow = field(out, "Run ID")
    check("job start (slow) prints a run id", code == 0 and bool(slow), err or out)
    if slow:
        check("the slow run is running", wait_status(lane, slow, {"running"}, 30) == "running")
        code, out, err = lane.mn("job", "pause", slow)
        check("job pause exits 0", code == 0, err or out)
        check("paused", wait_status(lane, slow, {"paused"}, 10) == "paused")
        code, out, err = lane.mn("job", "resume", slow)
        check("job resume exits 0", code == 0, err or out)
        check("running again", wait_status(lane, slow, {"running"}, 10) == "running")
        code, out, err = lane.mn("job", "cancel", slow)
        check("job cancel exits 0", code == 0, err or out)
        check("cancelled", wait_status(lane, slow, {"cancelled"}, 10) == "cancelled")

    # Another slow run for cancel-all.
    code, out, err = lane.mn("job", "start", "lane-slow")
    other = field(out, "Run ID")
    if other:
        wait_status(lane, other, {"running"}, 30)
    code, out, err = lane.mn("job", "cancel-all", "-y")
    check("job cancel-all -y exits 0", code == 0, err or out)
    op_id = field(out + err, "Operation ID")
    if other:
        check("cancel-all cancelled the active run", wait_status(lane, other, {"cancelled"}, 10) == "cancelled")
    if op_id:
        code, data, err = lane.mn_json("operation", "status", op_id)
        check("operation status prints the operation JSON", code == 0 and isinstance(data, dict) and data.get("operation_id") == op_id, err)
    else:
        check("cancel-all printed an operation id", False, out + err)

    code, data, err = lane.mn_json("node", "list")
    check("node list prints nodes", code == 0 and isinstance(data, dict) and any(n.get("name") == "lane-node" or n.get("node_name") == "lane-node" for n in data.get("nodes", [])), err or str(data)[:300])
    code, data, err = lane.mn_json("resource", "list")
    check("resource list prints JSON", code == 0 and data is not None, err)

    schedule_checks(lane)
    service_checks(lane)
    deployment_checks(lane)

    code, out, err = lane.mn("job", "list", env={"MN_GRPC_AUTH_TOKEN": "wrong-token"})
    check("a wrong token is refused (exit 13)", code == 13, f"exit {code}")
    code, out, err = lane.mn("job", "status", "no-such-job-1-abc")
    check("an unknown job exits 2 (NOT_FOUND)", code == 2, f"exit {code} {err[:200]}")


def schedule_rows(lane, *args):
    code, data, err = lane.mn_json(*args)
    return code, (data or {}).get("data", []) if isinstance(data, dict) else [], err


def schedule_checks(lane):
    """Schedules, triggers and events: created by `mn`, swept and run by `serve`."""
    bundle = str(REPO / "examples/research_flow")
    code, out, err = lane.mn("schedule", "create", bundle, "--cron", "0 3 * * *", "--timezone", "Europe/Berlin")
    periodic = field(out, "Schedule ID")
    check("schedule create prints a schedule id", code == 0 and bool(periodic), err or out)
    code, out, err = lane.mn("schedule", "delay", bundle, "--in", "1s")
    delayed = field(out, "Schedule ID")
    check("schedule delay prints a schedule id", code == 0 and bool(delayed), err or out)
    code, out, err = lane.mn("trigger", "create", bundle, "--event", "lane.order", "--filter-json", '{"total": {"gte": 10}}')
    trigger = field(out, "Schedule ID")
    check("trigger create prints a schedule id", code == 0 and bool(trigger), err or out)
    code, out, err = lane.mn("event", "emit", "lane.order", "--payload-json", '{"total": 50}')
    job = field(out, "Job ID")
    check("event emit starts the trigger's run", code == 0 and bool(job) and job.startswith(trigger or "?"), err or out)
    if job:
        check("the triggered run completes", wait_status(lane, job, {"completed", "failed"}) == "completed")
    code, rows, err = schedule_rows(lane, "schedule", "list")
    check("schedule list prints all three", code == 0 and len(rows) == 3, err or str(rows)[:300])
    deadline = time.time() + 30
    status = {}
    while delayed and time.time() < deadline:
        code, status, err = lane.mn_json("schedule", "status", delayed)
        if isinstance(status, dict) and status.get("status") == "completed":
            break
        time.sleep(0.5)
    check("the delayed schedule ran once and completed", isinstance(status, dict) and status.get("status") == "completed" and len(status.get("dispatches", [])) == 1, str(status)[:300])
    code, out, err = lane.mn("schedule", "run-now", periodic or "?", "--payload-json", '{"a": 1}')
    check("schedule run-now starts a run", code == 0 and bool(field(out, "Job ID")), err or out)
    code, out, err = lane.mn("schedule", "pause", periodic or "?")
    check("schedule pause", code == 0 and field(out, "Status") == "paused", err or out)
    code, out, err = lane.mn("trigger", "delete", trigger or "?")
    check("trigger delete", code == 0 and field(out, "Status") == "deleted", err or out)
    code, rows, err = schedule_rows(lane, "event", "list")
    check("event list shows the event", code == 0 and rows and rows[0].get("event_type") == "lane.order", err or str(rows)[:300])
    code, out, err = lane.mn("schedule", "status", "sched_nope")
    check("an unknown schedule exits 2 (NOT_FOUND)", code == 2, f"exit {code} {err[:200]}")


if __name__ == "__main__":
    main()
