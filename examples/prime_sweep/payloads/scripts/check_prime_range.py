#!/usr/bin/env python3
"""Prime sweep worker: counts the primes in one inclusive range and prints them as JSON.

The range comes from the message body (the dispatcher's seed for this worker):
{"worker_id": 3, "range_start": 1000203, "range_end": 1000302}.
The printed object is plain output (no structured keys), so the runtime wraps it in the
executor's default result payload and sends it on as `prime_chunk_result`.
"""

import json
import os


def is_prime(n):
    """Trial division by 6k +/- 1; plenty for seven-digit numbers."""
    if n < 2:
        return False
    if n < 4:
        return True
    if n % 2 == 0 or n % 3 == 0:
        return False
    f = 5
    while f * f <= n:
        if n % f == 0 or n % (f + 2) == 0:
            return False
        f += 6
    return True


def main():
    with open(os.environ["MIRROR_NEURON_INPUT_FILE"], encoding="utf-8") as fh:
        task = json.load(fh)
    start, end = int(task["range_start"]), int(task["range_end"])
    primes = [n for n in range(start, end + 1) if is_prime(n)]
    print(json.dumps({
        "worker_id": task["worker_id"],
        "range_start": start,
        "range_end": end,
        "checked_numbers": end - start + 1,
        "prime_count": len(primes),
        "primes": primes,
    }))


if __name__ == "__main__":
    main()
