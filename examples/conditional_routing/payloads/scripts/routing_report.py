#!/usr/bin/env python3
"""Routing report: turns the ledger's collected outcomes into a per-ticket and per-branch
view and completes the job with it."""

import json
import os


def main():
    with open(os.environ["MIRROR_NEURON_INPUT_FILE"], encoding="utf-8") as fh:
        ledger = json.load(fh)
    outcomes = sorted(ledger["messages"], key=lambda o: o["ticket_id"])
    by_branch = {}
    for o in outcomes:
        by_branch.setdefault(o["branch"], []).append(o["ticket_id"])
    report = {
        "tickets": len(outcomes),
        "routes": {o["ticket_id"]: o["branch"] for o in outcomes},
        "by_branch": by_branch,
        "actions": {o["ticket_id"]: o["action"] for o in outcomes},
    }
    print(json.dumps({"complete_job": report}))


if __name__ == "__main__":
    main()
