#!/usr/bin/env python3
"""Branch handler: records that a ticket reached this branch and what the branch did.

The same script serves the escalate, review and archive agents; the branch is the agent's
own id (MIRROR_NEURON_AGENT_ID) and the action comes from the node's `environment`.
The outcome is emitted as `ticket_outcome` through structured stdout. Its body has no
`agent_id`, so the ledger counts every ticket (an aggregator treats bodies that share an
`agent_id` as replays of one result).
"""

import json
import os


def main():
    with open(os.environ["MIRROR_NEURON_INPUT_FILE"], encoding="utf-8") as fh:
        ticket = json.load(fh)
    outcome = {
        "ticket_id": ticket["ticket_id"],
        "severity": ticket.get("severity"),
        "branch": os.environ["MIRROR_NEURON_AGENT_ID"],
        "action": os.environ.get("BRANCH_ACTION", "none"),
    }
    print(json.dumps({"emit_messages": [{"type": "ticket_outcome", "body": outcome}]}))


if __name__ == "__main__":
    main()
