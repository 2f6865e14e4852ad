#!/usr/bin/env python3
"""Answer step: an extractive reader. From the retrieved passages it picks the sentence that
contains the most query terms (ties: the higher-ranked passage, then the earlier sentence)
and answers with it, citing the passage it came from.

No model is involved: the answer is always a sentence of the corpus, so every citation can
be checked. Swapping this step for an LLM call (see examples/llm_step) would keep the graph.
"""

import json
import os
import re

from textproc import terms


def main():
    with open(os.environ["MIRROR_NEURON_INPUT_FILE"], encoding="utf-8") as fh:
        retrieval = json.load(fh)
    wanted = set(retrieval["query_terms"])
    best = None  # (matched terms, -rank, -position, sentence, passage id)
    for rank, hit in enumerate(retrieval["hits"]):
        for pos, sentence in enumerate(re.split(r"(?<=[.!?])\s+", hit["text"])):
            matched = len(wanted & set(terms(sentence)))
            key = (matched, -rank, -pos)
            if best is None or key > best[0]:
                best = (key, sentence, hit["id"])
    answer = {
        "qid": retrieval["qid"],
        "question": retrieval["question"],
        "answer": best[1] if best else None,
        "cited": best[2] if best else None,
        "retrieved": [{"id": h["id"], "score": h["score"]} for h in retrieval["hits"]],
    }
    print(json.dumps({"emit_messages": [{"type": "answer", "body": answer}]}))


if __name__ == "__main__":
    main()
