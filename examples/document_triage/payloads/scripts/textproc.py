"""Text handling shared by the extractor and the classifier, so that training documents and
incoming documents are turned into tokens in exactly the same way."""

import re

# Words too common to say anything about a document's kind.
STOPWORDS = set("""
a an and are as at be been but by can could did do does for from had has have how i if in
into is it its me my no not of on or our please so that the their them then there these this
those to too up us was we were what when which who will with would you your
""".split())

HEADER = re.compile(r"^(from|to|subject|date|cc):\s*(.*)$", re.IGNORECASE)


def parse(raw):
    """Splits an email-like document into headers and body; plain notes have no headers."""
    headers, body = {}, []
    lines = raw.replace("\r\n", "\n").split("\n")
    for i, line in enumerate(lines):
        m = HEADER.match(line.strip())
        if m and not body:
            headers[m.group(1).lower()] = m.group(2).strip()
        elif line.strip() or body:
            body.append(line)
    text = " ".join(" ".join(body).split())  # one line, single spaces
    return headers, text


def tokens(text):
    """Lower-case alphabetic words of 3+ letters minus stopwords. Numbers are dropped: amounts
    and ids differ per document and would only add noise for so small a training set."""
    words = re.findall(r"[a-z]+", text.lower())
    return [w for w in words if len(w) >= 3 and w not in STOPWORDS]
