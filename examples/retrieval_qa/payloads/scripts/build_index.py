#!/usr/bin/env python3
"""Index step: reads the shipped corpus (corpus/passages.jsonl) and builds a BM25 index:
per-term postings (passage id, term frequency), passage lengths and the passage texts.

The index travels to the retriever as one `bm25_index` message. For 40 short passages it is
a few tens of KB; a much larger corpus would rather write the index to shared storage.
"""

import json
import os
from collections import Counter

from textproc import terms


def main():
    with open(os.environ["MIRROR_NEURON_INPUT_FILE"], encoding="utf-8") as fh:
        request = json.load(fh)
    passages = []
    with open("corpus/passages.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                passages.append(json.loads(line))
    postings, lengths = {}, {}
    for p in passages:
        # The title is part of the passage: it often names the topic a question asks about.
        tf = Counter(terms(f"{p['title']} {p['text']}"))
        lengths[p["id"]] = sum(tf.values())
        for term, n in sorted(tf.items()):
            postings.setdefault(term, []).append([p["id"], n])
    index = {
        "k1": request.get("k1", 1.2),  # how fast repeated terms stop adding score
        "b": request.get("b", 0.75),  # how much long passages are penalised
        "top_k": request.get("top_k", 3),
        "passages": len(passages),
        "avg_length": sum(lengths.values()) / len(lengths),
        "lengths": lengths,
        "postings": dict(sorted(postings.items())),
        "texts": {p["id"]: {"title": p["title"], "text": p["text"]} for p in passages},
    }
    print(json.dumps({"emit_messages": [{"type": "bm25_index", "body": index}]}))


if __name__ == "__main__":
    main()
