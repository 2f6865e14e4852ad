#!/usr/bin/env python3
"""Telemetry source: splits the seeded sample series into `telemetry_chunk` messages.

Input body: {"sensor": "...", "chunk_size": 8, "threshold": 50, "samples": [ints]}.
Each chunk carries its position so the detector can number samples globally and knows
which chunk is the last: {"sensor", "chunk_index", "chunk_count", "offset", "threshold",
"samples"}. All chunks are emitted at once through structured stdout (`emit_messages`).
"""

import json
import os


def main():
    with open(os.environ["MIRROR_NEURON_INPUT_FILE"], encoding="utf-8") as fh:
        series = json.load(fh)
    samples, size = series["samples"], int(series["chunk_size"])
    offsets = range(0, len(samples), size)
    chunks = [
        {
            "type": "telemetry_chunk",
            "body": {
                "sensor": series["sensor"],
                "chunk_index": index,
                "chunk_count": len(offsets),
                "offset": offset,
                "threshold": series["threshold"],
                "samples": samples[offset:offset + size],
            },
        }
        for index, offset in enumerate(offsets)
    ]
    print(json.dumps({"emit_messages": chunks}))


if __name__ == "__main__":
    main()
