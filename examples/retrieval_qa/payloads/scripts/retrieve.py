#!/usr/bin/env python3
"""Retrieval step: scores every passage against each shipped question with BM25 and emits one
`retrieval` message per question carrying its top-k passages and their scores.

BM25 score of a passage for a query = sum over query terms t of
    idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg_length))
with idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5)), the non-negative variant.
The questions file has no gold answers: the retriever cannot peek at them.
"""

import json
import math
import os

from textproc import terms


def bm25(index, query_terms):
    n, avg = index["passages"], index["avg_length"]
    k1, b = index["k1"], index["b"]
    scores = {}
    for term in set(query_terms):
        posting = index["postings"].get(term, [])
        if not posting:
            continue
        idf = math.log(1 + (n - len(posting) + 0.5) / (len(posting) + 0.5))
        for pid, tf in posting:
            norm = tf + k1 * (1 - b + b * index["lengths"][pid] / avg)
            scores[pid] = scores.get(pid, 0.0) + idf * tf * (k1 + 1) / norm
    return scores


def main():
    with open(os.environ["MIRROR_NEURON_INPUT_FILE"], encoding="utf-8") as fh:
        index = json.load(fh)
    with open("questions.json", encoding="utf-8") as fh:
        questions = json.load(fh)
    messages = []
    for q in questions:
        query_terms = terms(q["question"])
        scores = bm25(index, query_terms)
        # Ties are broken by passage id so the ranking is the same on every run.
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[: index["top_k"]]
        hits = [
            {"id": pid, "score": round(score, 4), **index["texts"][pid]}
            for pid, score in ranked
        ]
        body = {"qid": q["qid"], "question": q["question"], "query_terms": query_terms,
                "hits": hits}
        messages.append({"type": "retrieval", "body": body})
    print(json.dumps({"emit_messages": messages}))


if __name__ == "__main__":
    main()
