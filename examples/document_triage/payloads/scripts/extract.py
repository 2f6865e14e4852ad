#!/usr/bin/env python3
"""Text extraction: reads every document in the uploaded inbox folder, separates the headers
(From, Subject) from the body, normalises the text and emits one `document` message per file.

Files are read in name order so the messages (and everything downstream) are deterministic.
"""

import json
import os

from textproc import parse, tokens


def main():
    with open(os.environ["MIRROR_NEURON_INPUT_FILE"], encoding="utf-8") as fh:
        request = json.load(fh)
    folder = request.get("inbox", "inbox")
    messages = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".txt"):
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as fh:
            headers, text = parse(fh.read())
        subject = headers.get("subject", text[:60])
        doc = {
            "doc_id": name[: -len(".txt")],
            "sender": headers.get("from"),
            "subject": subject,
            # The subject says a lot about an email's kind, so it is classified with the body.
            "text": f"{subject} {text}" if "subject" in headers else text,
        }
        doc["tokens"] = tokens(doc["text"])
        messages.append({"type": "document", "body": doc})
    if not messages:
        raise SystemExit(f"no .txt documents in {folder!r}")
    print(json.dumps({"emit_messages": messages}))


if __name__ == "__main__":
    main()
