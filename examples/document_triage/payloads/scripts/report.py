#!/usr/bin/env python3
"""Triage report: turns the aggregator's collected outcomes into counts per label and per
handler, the low-confidence items, and the held-out accuracy against inbox_labels.json.

The inbox documents are never used for training (the classifier fits on training/ only), so
comparing its predictions with their hand-assigned labels measures held-out accuracy.
"""

import json
import os
from collections import Counter


def main():
    with open(os.environ["MIRROR_NEURON_INPUT_FILE"], encoding="utf-8") as fh:
        collected = json.load(fh)
    with open("inbox_labels.json", encoding="utf-8") as fh:
        gold = json.load(fh)
    threshold = float(os.environ["LOW_CONFIDENCE_BELOW"])
    items = sorted(collected["messages"], key=lambda o: o["doc_id"])
    correct = [o["doc_id"] for o in items if o["label"] == gold[o["doc_id"]]]
    report = {
        "documents": len(items),
        "by_label": dict(sorted(Counter(o["label"] for o in items).items())),
        "by_handler": dict(sorted(Counter(o["handler"] for o in items).items())),
        "low_confidence": [
            {"doc_id": o["doc_id"], "label": o["label"], "confidence": o["confidence"],
             "runner_up": o["runner_up"]}
            for o in items if o["confidence"] < threshold
        ],
        "held_out_accuracy": {
            "correct": len(correct),
            "total": len(items),
            "accuracy": round(len(correct) / len(items), 4),
            "misclassified": [
                {"doc_id": o["doc_id"], "predicted": o["label"], "expected": gold[o["doc_id"]]}
                for o in items if o["doc_id"] not in correct
            ],
        },
        "items": {
            o["doc_id"]: {k: o[k] for k in ("label", "confidence", "handler", "details")}
            for o in items
        },
    }
    print(json.dumps({"complete_job": report}))


if __name__ == "__main__":
    main()
