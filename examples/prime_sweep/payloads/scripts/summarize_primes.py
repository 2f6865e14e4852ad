#!/usr/bin/env python3
"""Prime sweep summarizer: folds the collector's chunk results into one summary and
completes the job with it (structured stdout `{"complete_job": ...}`).

The message body is the aggregator's result: {"messages": [...], "count": N, ...}, where each
message is an executor result payload whose `sandbox.stdout` holds one worker's JSON line.
"""

import json
import os

SAMPLE = 10  # how many of the smallest and largest primes to show


def main():
    with open(os.environ["MIRROR_NEURON_INPUT_FILE"], encoding="utf-8") as fh:
        collection = json.load(fh)
    chunks = [json.loads(m["sandbox"]["stdout"]) for m in collection["messages"]]
    chunks.sort(key=lambda c: c["range_start"])
    primes = [p for c in chunks for p in c["primes"]]
    summary = {
        "mode": "prime_sweep",
        "worker_count": len(chunks),
        "checked_numbers": sum(c["checked_numbers"] for c in chunks),
        "prime_count": len(primes),
        "range_start": chunks[0]["range_start"],
        "range_end": chunks[-1]["range_end"],
        "first_primes": primes[:SAMPLE],
        "last_primes": primes[-SAMPLE:],
    }
    print(json.dumps({"complete_job": summary}))


if __name__ == "__main__":
    main()
