#!/usr/bin/env python3
"""LLM step: sends one text to an OpenAI-compatible chat completions endpoint and asks for a
category and a one-sentence summary, as JSON. Python standard library only (urllib).

Configuration (environment, handed to the step by the node's `pass_env`):
  MN_EXAMPLE_LLM_BASE_URL  e.g. http://127.0.0.1:11434/v1 (Ollama) or http://127.0.0.1:8080/v1
                           (llama.cpp's llama-server); required
  MN_EXAMPLE_LLM_MODEL     the model name the server knows (e.g. llama3.2:1b); required
  OPENAI_API_KEY           optional bearer token, for servers that want one (add it to
                           the node's pass_env; local servers need none)

Without a configured endpoint the step fails and says how to configure it: it never invents
an answer.
"""

import json
import os
import sys
import urllib.error
import urllib.request

CATEGORIES = ["bug report", "feature request", "billing", "security", "other"]

SYSTEM = (
    "You triage short messages sent to a software company. Answer with a JSON object with "
    'exactly two keys: "category", one of ' + json.dumps(CATEGORIES) + ', and "summary", '
    "one sentence of at most 20 words. No other text."
)


def fail(message):
    """Exits non-zero with the message on stderr, which becomes the step's error."""
    print(message, file=sys.stderr)
    sys.exit(2)


def settings():
    base = os.environ.get("MN_EXAMPLE_LLM_BASE_URL", "").strip()
    model = os.environ.get("MN_EXAMPLE_LLM_MODEL", "").strip()
    if not base or not model:
        missing = [n for n, v in (("MN_EXAMPLE_LLM_BASE_URL", base),
                                  ("MN_EXAMPLE_LLM_MODEL", model)) if not v]
        # The last line of stderr becomes the step's error, so the headline goes last.
        fail(
            "Point the example at an OpenAI-compatible server, for example:\n"
            "  Ollama:    ollama pull llama3.2:1b   (the Ollama app or `ollama serve` listens on 11434)\n"
            "             export MN_EXAMPLE_LLM_BASE_URL=http://127.0.0.1:11434/v1 "
            "MN_EXAMPLE_LLM_MODEL=llama3.2:1b\n"
            "  llama.cpp: llama-server -m model.gguf --port 8080\n"
            "             export MN_EXAMPLE_LLM_BASE_URL=http://127.0.0.1:8080/v1 "
            "MN_EXAMPLE_LLM_MODEL=local\n"
            f"llm_step is not configured: {' and '.join(missing)} not set "
            "(see examples/llm_step/README.md)"
        )
    return base.rstrip("/"), model, os.environ.get("OPENAI_API_KEY", "").strip()


def chat(base, model, key, text):
    request = {
        "model": model,
        "temperature": 0,  # as repeatable as the server allows
        "response_format": {"type": "json_object"},  # Ollama and llama-server honour this
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}],
    }
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(f"{base}/chat/completions", json.dumps(request).encode(),
                                 headers)
    timeout = float(os.environ.get("LLM_TIMEOUT_SECONDS", "120"))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as e:
        # A 4xx is a configuration problem (wrong model name, bad key): say what the server said.
        fail(f"{base}/chat/completions answered HTTP {e.code}: {e.read()[:500].decode(errors='replace')}")
    except urllib.error.URLError as e:
        # Left as the OS words it (e.g. "Connection refused"): the runtime retries such
        # network failures up to the node's max_attempts.
        fail(f"cannot reach {base}/chat/completions: {e.reason}")


def parse(content):
    """The model's JSON reply; small models sometimes wrap it in a code fence."""
    text = content.strip().removeprefix("```json").removeprefix("```").removesuffix("```")
    try:
        reply = json.loads(text)
    except json.JSONDecodeError:
        return None
    return reply if isinstance(reply, dict) else None


def main():
    base, model, key = settings()
    with open(os.environ["MIRROR_NEURON_INPUT_FILE"], encoding="utf-8") as fh:
        item = json.load(fh)
    response = chat(base, model, key, item["text"])
    try:
        content = response["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        fail(f"unexpected response shape from {base}: {json.dumps(response)[:500]}")
    reply = parse(content)
    category = reply.get("category") if reply else None
    result = {
        "id": item["id"],
        "model": response.get("model", model),
        # Reported as the model gave it; `valid` says whether it kept to the instructions.
        "category": category,
        "summary": reply.get("summary") if reply else None,
        "valid": category in CATEGORIES and bool(reply.get("summary")),
        "raw": None if reply else content,
        "usage": response.get("usage"),
    }
    print(json.dumps({"emit_messages": [{"type": "llm_result", "body": result}]}))


if __name__ == "__main__":
    main()
