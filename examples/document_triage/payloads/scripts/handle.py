#!/usr/bin/env python3
"""Per-label handlers. One script serves the five handler agents; the agent's id
(MIRROR_NEURON_AGENT_ID) picks what to pull out of the document:

- accounts_payable: the invoice number and the amounts with their currency
- security_desk: the severity tag and the IP addresses to block or look up
- support_queue: the ticket number, and whether the customer sounds blocked
- notes_archive: the action items
- human_review: nothing automatic; records why a person must look (low confidence)

The outcome body has no `agent_id` field on purpose: the aggregator treats bodies that share
an `agent_id` as replays of one result, and one handler agent handles several documents.
"""

import json
import os
import re


def accounts_payable(text):
    amounts = re.findall(r"\b(EUR|USD|GBP)\s+([\d,]+\.\d\d)", text)
    invoice = re.search(r"\b(?:invoice(?: number)?:?\s+)([A-Z]{0,4}-?[\d-]{3,})", text, re.I)
    return {
        "invoice": invoice.group(1) if invoice else None,
        # The last amount is the total in every layout the example ships.
        "amount": f"{amounts[-1][0]} {amounts[-1][1]}" if amounts else None,
    }


def security_desk(text):
    severity = re.search(r"\[(CRITICAL|HIGH|MEDIUM|LOW)\]", text)
    return {
        "severity": severity.group(1) if severity else "UNRATED",
        "ips": sorted(set(re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", text))),
    }


def support_queue(text):
    ticket = re.search(r"#(\d{4,})", text)
    blocked = re.search(r"\b(cannot|unable|fails?|crash\w*|expired|never arrives)\b", text, re.I)
    return {"ticket": ticket.group(1) if ticket else None, "customer_blocked": bool(blocked)}


def notes_archive(text):
    # Action items follow "Action items:", "Action:", "Follow-up:" or "next steps:".
    m = re.search(r"(?:action items?|action|follow-up|next steps):\s*(.*)", text, re.I)
    items = [s.strip(" .") for s in re.split(r";", m.group(1))] if m else []
    return {"action_items": [s for s in items if s]}


def human_review(text):
    return {"reason": "confidence below the routing threshold"}


HANDLERS = {f.__name__: f for f in (accounts_payable, security_desk, support_queue,
                                    notes_archive, human_review)}


def main():
    with open(os.environ["MIRROR_NEURON_INPUT_FILE"], encoding="utf-8") as fh:
        doc = json.load(fh)
    handler = os.environ["MIRROR_NEURON_AGENT_ID"]
    outcome = {
        "doc_id": doc["doc_id"],
        "subject": doc["subject"],
        "label": doc["label"],
        "confidence": doc["confidence"],
        "runner_up": doc["runner_up"],
        "handler": handler,
        "details": HANDLERS[handler](doc["text"]),
    }
    print(json.dumps({"emit_messages": [{"type": "handled", "body": outcome}]}))


if __name__ == "__main__":
    main()
