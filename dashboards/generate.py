#!/usr/bin/env python3
"""Writes the Grafana dashboards in this folder (stdlib only; run from anywhere).

The JSON files are committed; edit this script and re-run it rather than editing them by
hand, so the four dashboards keep one layout and one datasource variable. Every metric name
they use must be exported by a fresh node: tests/metrics.rs checks that.
"""

import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
DS = {"type": "prometheus", "uid": "${datasource}"}


def panel(title, exprs, unit="short", kind="timeseries", desc=""):
    """One panel; exprs is a list of (expr, legend)."""
    return {
        "type": kind,
        "title": title,
        "description": desc,
        "datasource": DS,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [
            {"datasource": DS, "expr": e, "legendFormat": legend, "refId": chr(ord("A") + i)}
            for i, (e, legend) in enumerate(exprs)
        ],
    }


def row(title):
    """A full-width row header; the panels after it belong to it."""
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def dashboard(uid, title, description, panels):
    # Two panels side by side; a row header takes a line of its own and starts a new line.
    placed, x, y = [], 0, 0
    for i, p in enumerate(panels):
        if p["type"] == "row":
            if x:
                x, y = 0, y + 8
            placed.append(dict(p, id=i + 1, gridPos={"x": 0, "y": y, "w": 24, "h": 1}))
            y += 1
            continue
        placed.append(dict(p, id=i + 1, gridPos={"x": x, "y": y, "w": 12, "h": 8}))
        x, y = (12, y) if x == 0 else (0, y + 8)
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["mirror-neuron"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                }
            ]
        },
        "annotations": {"list": []},
        "panels": placed,
    }


def q(p, metric, by):
    return f"histogram_quantile({p}, sum by (le, {by}) (rate({metric}_bucket[5m])))"


OVERVIEW = dashboard(
    "mn-overview",
    "mirror-neuron / Overview",
    "Is the runtime healthy and busy: jobs, throughput, lag, dead letters, Redis, API.",
    [
        panel("Jobs by status", [("max by (status) (mirror_neuron_jobs)", "{{status}}")]),
        panel(
            "Events appended /s",
            [("sum(rate(mirror_neuron_events_appended_total[5m]))", "events/s")],
            "ops",
        ),
        panel(
            "Agent messages processed /s",
            [("sum(rate(mirror_neuron_agent_messages_processed_total[5m]))", "messages/s")],
            "ops",
        ),
        panel(
            "Dead letters (per 5m)",
            [("sum by (source) (increase(mirror_neuron_dead_letters_total[5m]))", "{{source}}")],
        ),
        panel(
            "Projection lag (entries)",
            [("max by (group) (mirror_neuron_projection_lag)", "{{group}}")],
        ),
        panel("Redis up", [("min(mirror_neuron_redis_up)", "up")], kind="stat"),
        panel(
            "gRPC requests /s by code",
            [("sum by (code) (rate(mirror_neuron_grpc_requests_total[5m]))", "{{code}}")],
            "reqps",
        ),
        panel(
            "Jobs owned per node",
            [("sum by (instance) (mirror_neuron_owned_jobs)", "{{instance}}")],
        ),
        panel(
            "Services by status",
            [("sum by (status) (mirror_neuron_services)", "{{status}}")],
            desc="Instances each node monitors, by status after its last round (core-spec 9.1).",
        ),
        panel(
            "Service checks /s by type and status; failures",
            [
                (
                    "sum by (type, status) (rate(mirror_neuron_service_checks_total[5m]))",
                    "{{type}} {{status}}",
                ),
                (
                    "sum by (type) (rate(mirror_neuron_service_check_failures_total[5m]))",
                    "failed {{type}}",
                ),
            ],
            "ops",
        ),
        panel(
            "Service check latency p95 by type",
            [(q(0.95, "mirror_neuron_service_check_duration_seconds", "type"), "{{type}}")],
            "s",
        ),
        row("Deployments"),
        panel(
            "Deployments by status",
            [("max by (status) (mirror_neuron_deployments)", "{{status}}")],
            desc="Deployment keys by the status of their latest rollout (core-spec 9.2).",
        ),
        panel(
            "Rollout duration p50 / p95",
            [
                (q(0.5, "mirror_neuron_deployment_rollout_duration_seconds", "outcome"), "p50 {{outcome}}"),
                (q(0.95, "mirror_neuron_deployment_rollout_duration_seconds", "outcome"), "p95 {{outcome}}"),
            ],
            "s",
        ),
        panel(
            "Rollouts by outcome (per 1h)",
            [("sum by (outcome) (increase(mirror_neuron_deployment_rollouts_total[1h]))", "{{outcome}}")],
        ),
        panel(
            "Automatic reverts /s",
            [("sum(rate(mirror_neuron_deployment_reverts_total[15m]))", "reverts/s")],
            "ops",
            desc="Failed rollouts undone by auto_revert.",
        ),
    ],
)

JOBS = dashboard(
    "mn-jobs",
    "mirror-neuron / Jobs",
    "How jobs, agents and executors behave: durations, queues, runs, failures.",
    [
        panel("Jobs by status", [("max by (status) (mirror_neuron_jobs)", "{{status}}")]),
        panel(
            "Job duration p50 / p95",
            [
                (q(0.5, "mirror_neuron_job_duration_seconds", "status"), "p50 {{status}}"),
                (q(0.95, "mirror_neuron_job_duration_seconds", "status"), "p95 {{status}}"),
            ],
            "s",
        ),
        panel(
            "Jobs finished /s",
            [
                (
                    "sum by (status) (rate(mirror_neuron_job_duration_seconds_count[5m]))",
                    "{{status}}",
                )
            ],
            "ops",
        ),
        panel(
            "Queued and in-flight messages",
            [
                ("sum(mirror_neuron_queued_messages)", "queued"),
                ("sum(mirror_neuron_inflight_messages)", "in flight"),
            ],
        ),
        panel(
            "Executor runs /s by pool and outcome",
            [
                (
                    "sum by (pool, outcome) (rate(mirror_neuron_executor_runs_total[5m]))",
                    "{{pool}} {{outcome}}",
                )
            ],
            "ops",
        ),
        panel(
            "Executor run duration p95 by pool",
            [(q(0.95, "mirror_neuron_executor_run_duration_seconds", "pool"), "{{pool}}")],
            "s",
        ),
        panel(
            "Agent steps: processed and failed /s",
            [
                ("sum(rate(mirror_neuron_agent_messages_processed_total[5m]))", "processed"),
                ("sum(rate(mirror_neuron_agent_step_failures_total[5m]))", "failed"),
            ],
            "ops",
        ),
        panel(
            "Dead letters by source (per 5m)",
            [("sum by (source) (increase(mirror_neuron_dead_letters_total[5m]))", "{{source}}")],
        ),
    ],
)

CLUSTER = dashboard(
    "mn-cluster",
    "mirror-neuron / Cluster",
    "Nodes, leadership, leases, node resources and the gRPC API.",
    [
        panel("Nodes alive", [("max(mirror_neuron_cluster_nodes)", "nodes")], kind="stat"),
        panel(
            "Leader",
            [("max by (instance) (mirror_neuron_is_leader)", "{{instance}}")],
        ),
        panel(
            "Leader changes and lost nodes (per 15m)",
            [
                ("sum(increase(mirror_neuron_leader_changes_total[15m]))", "leader changes"),
                ("sum(increase(mirror_neuron_nodes_lost_total[15m]))", "nodes lost"),
            ],
        ),
        panel(
            "Lease renewals and losses /s",
            [
                ("sum by (kind) (rate(mirror_neuron_lease_renewals_total[5m]))", "renewed {{kind}}"),
                ("sum by (kind) (rate(mirror_neuron_lease_losses_total[5m]))", "lost {{kind}}"),
            ],
            "ops",
        ),
        panel(
            "CPU cores per node",
            [("max by (instance) (mirror_neuron_node_cpu_cores)", "{{instance}}")],
        ),
        panel(
            "Memory per node",
            [("max by (instance) (mirror_neuron_node_memory_bytes)", "{{instance}}")],
            "bytes",
        ),
        panel(
            "gRPC requests /s by method",
            [("sum by (method) (rate(mirror_neuron_grpc_requests_total[5m]))", "{{method}}")],
            "reqps",
        ),
        panel(
            "gRPC latency p95 by method",
            [(q(0.95, "mirror_neuron_grpc_request_duration_seconds", "method"), "{{method}}")],
            "s",
        ),
        panel(
            "Versions",
            [("count by (version) (mirror_neuron_build_info)", "{{version}}")],
        ),
        panel(
            "Jobs owned per node",
            [("sum by (instance) (mirror_neuron_owned_jobs)", "{{instance}}")],
        ),
    ],
)

EVENT_STORE = dashboard(
    "mn-event-store",
    "mirror-neuron / Event store",
    "Redis Streams: appends, their latency and outcomes, projections, Redis health.",
    [
        panel(
            "Events appended /s by type",
            [
                (
                    "sum by (event_type) (rate(mirror_neuron_events_appended_total[5m]))",
                    "{{event_type}}",
                )
            ],
            "ops",
        ),
        panel(
            "Appends /s by outcome",
            [("sum by (outcome) (rate(mirror_neuron_appends_total[5m]))", "{{outcome}}")],
            "ops",
        ),
        panel(
            "Append latency p50 / p99",
            [
                (q(0.5, "mirror_neuron_append_duration_seconds", "outcome"), "p50 {{outcome}}"),
                (q(0.99, "mirror_neuron_append_duration_seconds", "outcome"), "p99 {{outcome}}"),
            ],
            "s",
        ),
        panel(
            "Projection lag by group",
            [("max by (group) (mirror_neuron_projection_lag)", "{{group}}")],
        ),
        panel(
            "Redis PING p99",
            [(q(0.99, "mirror_neuron_redis_ping_seconds", "instance"), "{{instance}}")],
            "s",
        ),
        panel("Redis up", [("min by (instance) (mirror_neuron_redis_up)", "{{instance}}")]),
        panel(
            "Undecodable events dead-lettered (per 15m)",
            [
                (
                    'sum(increase(mirror_neuron_dead_letters_total{source="event"}[15m]))',
                    "events",
                )
            ],
        ),
    ],
)


def main():
    for name, d in [
        ("overview", OVERVIEW),
        ("jobs", JOBS),
        ("cluster", CLUSTER),
        ("event_store", EVENT_STORE),
    ]:
        (HERE / f"{name}.json").write_text(json.dumps(d, indent=2) + "\n")


if __name__ == "__main__":
    main()
