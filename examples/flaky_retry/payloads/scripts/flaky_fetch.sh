#!/usr/bin/env bash
# Flaky fetch: fails with a transient-looking error for the first FAIL_TIMES attempts of a
# job, then succeeds. Each attempt runs in a fresh temp dir, so the attempt counter lives in
# ${TMPDIR:-/tmp}/mn-flaky-<job id>, which every attempt of this job sees; it is removed on
# success.
set -euo pipefail

counter="${TMPDIR:-/tmp}/mn-flaky-${MIRROR_NEURON_JOB_ID}"
previous=$(cat "$counter" 2>/dev/null || echo 0)
attempt=$((previous + 1))
echo "$attempt" > "$counter"

if (( attempt <= ${FAIL_TIMES:-2} )); then
  # "connection reset" is one of the runtime's transient markers: this exit is retried.
  echo "attempt $attempt: upstream quote service: connection reset by peer" >&2
  exit 1
fi

rm -f "$counter"
symbol=$(python3 -c 'import json, os; print(json.load(open(os.environ["MIRROR_NEURON_INPUT_FILE"]))["symbol"])')
printf '{"symbol": "%s", "price_cents": 18250, "served_on_attempt": %d}\n' "$symbol" "$attempt"
