#!/usr/bin/env python3
"""Serve toyformer's static notebook page (www/) for local use and browser tests.

Binds to 127.0.0.1 only. PORT overrides the port (default 8000; PORT=0 picks a free one).
Prints the URL on its first line so a test can read it. Sends .wasm as application/wasm (needed for
WebAssembly.instantiateStreaming) and .js/.mjs as text/javascript (needed for ES modules), with caching off
so a rebuilt www/pkg is always picked up.

ROOT=DIR serves DIR instead of www/ (`make serve` serves the `make site` folder). ISOLATE=1 sends the
cross-origin isolation headers (COOP same-origin, COEP require-corp), so the page gets SharedArrayBuffer
without the site's service worker; without it the server sends neither, like a plain static host.

For tests only: FIXTURES=DIR also serves the files of DIR under /fixtures/ (the page's URL
import is tested against it); it is off unless set.
"""
import functools
import http.server
import os
import sys
from pathlib import Path

HOST = "127.0.0.1"
WWW = Path(__file__).resolve().parent.parent / "www"


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".json": "application/json",
        ".css": "text/css",
        ".svg": "image/svg+xml",
        ".safetensors": "application/octet-stream",
        ".pt": "application/octet-stream",
    }

    def translate_path(self, path):
        fixtures = os.environ.get("FIXTURES")
        if fixtures and path.startswith("/fixtures/"):
            name = path[len("/fixtures/"):].split("?", 1)[0].split("#", 1)[0]
            if "/" not in name and name not in ("", ".", ".."):
                return str(Path(fixtures) / name)
            return str(Path(fixtures) / "..invalid..")
        return super().translate_path(path)

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        if os.environ.get("ISOLATE") == "1":
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def log_message(self, fmt, *args):
        if os.environ.get("QUIET") != "1":
            super().log_message(fmt, *args)


def main():
    global WWW
    if os.environ.get("ROOT"):
        WWW = Path(os.environ["ROOT"]).resolve()
    if not WWW.is_dir():
        sys.exit(f"serve.py: {WWW} does not exist (run `make wasm vendor` first)")
    if not (WWW / "index.html").is_file():
        print(f"serve.py: warning: {WWW}/index.html does not exist yet", file=sys.stderr)
    port = int(os.environ.get("PORT", "8000"))
    handler = functools.partial(Handler, directory=str(WWW))
    try:
        server = http.server.ThreadingHTTPServer((HOST, port), handler)
    except OSError as e:
        sys.exit(f"serve.py: cannot listen on {HOST}:{port}: {e} (set PORT to another port)")
    print(f"Serving {WWW} at http://{HOST}:{server.server_address[1]}/  (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
