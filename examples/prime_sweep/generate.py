#!/usr/bin/env python3
"""Writes a prime_sweep bundle with any number of workers.

    python3 generate.py --workers 1000 --out /tmp/prime_sweep_1000

The dispatcher gets one seed per worker ({worker_id, range_start, range_end}) and forwards
each one along the single edge whose condition matches its worker_id. Worker i checks the
inclusive range [start + (i-1)*chunk, start + i*chunk - 1]. The payload scripts are copied
next to the new manifest unless --out is this folder.
"""

import argparse
import json
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent


def worker_name(i):
    return f"prime_worker_{i:04d}"


def build_manifest(workers, start, chunk):
    seeds, nodes, edges = [], [], []
    nodes.append({
        "node_id": "dispatcher",
        "agent_type": "router",
        "role": "root",
        "config": {"emit_type": "prime_chunk_request"},
    })
    for i in range(1, workers + 1):
        lo = start + (i - 1) * chunk
        seeds.append({"worker_id": i, "range_start": lo, "range_end": lo + chunk - 1})
        nodes.append({
            "node_id": worker_name(i),
            "agent_type": "executor",
            "config": {
                "upload_path": "scripts/check_prime_range.py",
                "command": ["python3", "check_prime_range.py"],
                "timeout_seconds": 60,
                "max_attempts": 2,
                "retry_backoff_ms": 200,
                "output_message_type": "prime_chunk_result",
            },
        })
        edges.append({
            "edge_id": f"dispatch_{i:04d}",
            "from_node": "dispatcher",
            "to_node": worker_name(i),
            "message_type": "prime_chunk_request",
            "conditions": {"path": "payload.worker_id", "op": "==", "value": i},
        })
        edges.append({
            "edge_id": f"collect_{i:04d}",
            "from_node": worker_name(i),
            "to_node": "collector",
            "message_type": "prime_chunk_result",
        })
    nodes.append({
        "node_id": "collector",
        "agent_type": "aggregator",
        "config": {"complete_after": workers, "output_message_type": "prime_chunk_collection"},
    })
    nodes.append({
        "node_id": "summarizer",
        "agent_type": "executor",
        "config": {
            "upload_path": "scripts/summarize_primes.py",
            "command": ["python3", "summarize_primes.py"],
            "timeout_seconds": 60,
            "output_message_type": None,
        },
    })
    edges.append({
        "edge_id": "collector_to_summarizer",
        "from_node": "collector",
        "to_node": "summarizer",
        "message_type": "prime_chunk_collection",
    })
    return {
        "manifest_version": "1.0",
        "graph_id": f"prime_sweep_{workers}_workers",
        "job_name": f"prime-sweep-{workers}",
        "entrypoints": ["dispatcher"],
        "initial_inputs": {"dispatcher": seeds},
        "nodes": nodes,
        "edges": edges,
        "policies": {"recovery_mode": "local_restart"},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--start", type=int, default=1_000_003)
    parser.add_argument("--chunk", type=int, default=100)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    if args.workers < 1 or args.chunk < 1:
        parser.error("--workers and --chunk must be at least 1")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if out != HERE:
        shutil.copytree(HERE / "payloads", out / "payloads", dirs_exist_ok=True)
    manifest = build_manifest(args.workers, args.start, args.chunk)
    text = json.dumps(manifest, indent=2) + "\n"
    (out / "manifest.json").write_text(text, encoding="utf-8")
    print(f"wrote {out / 'manifest.json'} ({args.workers} workers)")


if __name__ == "__main__":
    main()
