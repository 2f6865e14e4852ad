"""A tiny HTTP service, release 2: GET /health answers "ok", GET /version answers the version
as JSON (new in this release), anything else greets with the version.

Runs until the runtime stops it (a deployment replacing this agent, a cancel, shutdown).
"""

import http.server
import json
import os
import time

PORT = int(os.environ.get("PORT", "8731"))
VERSION = os.environ.get("APP_VERSION", "?")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            body = b"ok\n"
        elif self.path == "/version":
            body = json.dumps({"version": VERSION, "port": PORT}).encode() + b"\n"
        else:
            body = f"hello from version {VERSION}\n".encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    allow_reuse_address = True


def bind(attempts=50):
    # A replacement can start while the version it replaces is still exiting and holds the
    # port for a moment: retry for a few seconds before giving up.
    for _ in range(attempts - 1):
        try:
            return Server(("127.0.0.1", PORT), Handler)
        except OSError:
            time.sleep(0.1)
    return Server(("127.0.0.1", PORT), Handler)


server = bind()
print(f"version {VERSION} listening on 127.0.0.1:{PORT}", flush=True)
server.serve_forever()
