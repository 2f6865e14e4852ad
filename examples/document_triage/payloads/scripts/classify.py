#!/usr/bin/env python3
"""Classifier: a multinomial naive Bayes model fitted on the labelled documents the example
ships (training/<label>/*.txt), then applied to the one `document` this step received.

Why fit in every step: the agent runs with `concurrency`, so several steps run at once and
share nothing; fitting 24 short documents takes a few milliseconds, which is cheaper than
shipping a model between agents. The fit is deterministic, so every step gets the same model.

Confidence is the posterior of the best label computed from the per-token average
log-likelihood (length-normalised). Plain naive Bayes posteriors are close to 0 or 1 for any
document longer than a few words, which would make a confidence threshold meaningless.
"""

import json
import math
import os
from collections import Counter

from textproc import parse, tokens

ALPHA = 1.0  # Laplace smoothing: unseen words get a small, non-zero probability
# Scales the length-normalised scores before the softmax (an inverse temperature). At 5 a
# document whose words clearly belong to one label scores above 0.9, a mixed one near 0.5-0.7.
SHARPNESS = 5.0


def fit(root):
    """Counts words per label. Returns (labels, priors, word_counts, totals, vocabulary)."""
    counts, docs = {}, Counter()
    for label in sorted(os.listdir(root)):
        folder = os.path.join(root, label)
        counts[label] = Counter()
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name), encoding="utf-8") as fh:
                headers, text = parse(fh.read())
            counts[label].update(tokens(f"{headers.get('subject', '')} {text}"))
            docs[label] += 1
    vocab = set().union(*counts.values())
    n = sum(docs.values())
    priors = {label: math.log(docs[label] / n) for label in counts}
    totals = {label: sum(c.values()) for label, c in counts.items()}
    return priors, counts, totals, vocab


def score(words, priors, counts, totals, vocab):
    """Average log P(word | label) over the known words, plus the log prior spread over them."""
    known = [w for w in words if w in vocab] or words
    scores = {}
    for label in priors:
        denom = totals[label] + ALPHA * len(vocab)
        ll = sum(math.log((counts[label][w] + ALPHA) / denom) for w in known)
        scores[label] = (priors[label] + ll) / max(len(known), 1)
    return scores


def posteriors(scores, sharpness):
    """Softmax of the length-normalised scores."""
    top = max(scores.values())
    exp = {k: math.exp(sharpness * (v - top)) for k, v in scores.items()}
    total = sum(exp.values())
    return {k: v / total for k, v in exp.items()}


def main():
    with open(os.environ["MIRROR_NEURON_INPUT_FILE"], encoding="utf-8") as fh:
        doc = json.load(fh)
    model = fit("training")
    probs = posteriors(score(doc["tokens"], *model), SHARPNESS)
    ranked = sorted(probs.items(), key=lambda kv: (-kv[1], kv[0]))
    label, confidence = ranked[0]
    out = {
        "doc_id": doc["doc_id"],
        "subject": doc["subject"],
        "text": doc["text"],
        "label": label,
        "confidence": round(confidence, 4),
        "runner_up": ranked[1][0],
    }
    print(json.dumps({"emit_messages": [{"type": "classified", "body": out}]}))


if __name__ == "__main__":
    main()
