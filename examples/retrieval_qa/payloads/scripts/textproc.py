"""Tokenising shared by the indexer and the retriever: a query and a passage must be cut into
terms the same way or they cannot match."""

import re

STOPWORDS = set("""
a about after all an and any are as at be before but by can do does for from get has have
how i if in into is it its my not of on or should so than that the them then there these
they this to too up use what when where which while who why will with without you your
""".split())


def stem(word):
    """A deliberately tiny suffix stripper: enough to match 'tyres'/'tyre' and
    'leaves'/'leaf'-like plurals, 'turning'/'turn', without a stemming library."""
    for suffix, keep in (("ies", "y"), ("ves", "f"), ("ing", ""), ("es", ""), ("s", ""), ("ed", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + keep
    return word


def terms(text):
    words = re.findall(r"[a-z0-9]+", text.lower())
    return [stem(w) for w in words if w not in STOPWORDS and len(w) > 1]
