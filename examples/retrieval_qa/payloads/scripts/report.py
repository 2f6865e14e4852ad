#!/usr/bin/env python3
"""QA report: lists each question's answer with the passage it cites and the passages
retrieved, and measures retrieval against the shipped gold passage ids:

- hit rate@k: share of questions with at least one gold passage among the top k
- MRR: mean of 1/rank of the first gold passage (0 when none was retrieved)
- citation accuracy: share of answers that cite a gold passage
"""

import json
import os


def main():
    with open(os.environ["MIRROR_NEURON_INPUT_FILE"], encoding="utf-8") as fh:
        collected = json.load(fh)
    with open("gold.json", encoding="utf-8") as fh:
        gold = json.load(fh)
    # Sort by the number in the id so q10 comes after q9.
    answers = sorted(collected["messages"], key=lambda a: int(a["qid"].lstrip("q")))
    hits, rr, cited_ok = 0, 0.0, 0
    for a in answers:
        ids = [r["id"] for r in a["retrieved"]]
        ranks = [i + 1 for i, pid in enumerate(ids) if pid in gold[a["qid"]]]
        a["gold"] = gold[a["qid"]]
        a["hit"] = bool(ranks)
        hits += bool(ranks)
        rr += 1 / ranks[0] if ranks else 0.0
        cited_ok += a["cited"] in gold[a["qid"]]
    n = len(answers)
    report = {
        "questions": n,
        "top_k": max(len(a["retrieved"]) for a in answers),
        "hit_rate": round(hits / n, 4),
        "mrr": round(rr / n, 4),
        "citation_accuracy": round(cited_ok / n, 4),
        "misses": [a["qid"] for a in answers if not a["hit"]],
        "answers": answers,
    }
    print(json.dumps({"complete_job": report}))


if __name__ == "__main__":
    main()
