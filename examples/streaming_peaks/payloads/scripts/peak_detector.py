#!/usr/bin/env python3
"""Streaming peak detector: handles one `telemetry_chunk` per run, carrying what it needs
between runs in `next_state` (read back from the context file's `agent_state`).

A peak is a sample strictly above its left neighbour, not below its right neighbour, and at
least the threshold; the first and last samples of the series are never peaks. A peak can
straddle two chunks, which is why the state keeps the last two samples seen.
After the final chunk the detector completes the job with the summary.
"""

import json
import os


def load(env_name):
    with open(os.environ[env_name], encoding="utf-8") as fh:
        return json.load(fh)


def main():
    chunk = load("MIRROR_NEURON_INPUT_FILE")
    state = load("MIRROR_NEURON_CONTEXT_FILE").get("agent_state") or {
        "tail": [],  # up to two [index, value] pairs from the previous chunks
        "peaks": [],
        "max": None,  # [index, value] of the running maximum
        "samples_seen": 0,
        "chunks_seen": 0,
    }
    if chunk["chunk_index"] != state["chunks_seen"]:
        raise SystemExit(f"chunk {chunk['chunk_index']} arrived out of order")

    points = [[chunk["offset"] + i, v] for i, v in enumerate(chunk["samples"])]
    window = state["tail"] + points
    for (_, left), (index, value), (_, right) in zip(window, window[1:], window[2:]):
        if left < value >= right and value >= chunk["threshold"]:
            state["peaks"].append({"index": index, "value": value})
    for index, value in points:
        if state["max"] is None or value > state["max"][1]:
            state["max"] = [index, value]
    state["tail"] = window[-2:]
    state["samples_seen"] += len(points)
    state["chunks_seen"] += 1

    out = {"next_state": state}
    if state["chunks_seen"] == chunk["chunk_count"]:
        out["complete_job"] = {
            "sensor": chunk["sensor"],
            "chunks": state["chunks_seen"],
            "samples": state["samples_seen"],
            "threshold": chunk["threshold"],
            "max": {"index": state["max"][0], "value": state["max"][1]},
            "peaks": state["peaks"],
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
