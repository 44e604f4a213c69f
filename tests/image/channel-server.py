#!/usr/bin/env python3
"""The laptop's update channel for the image tests: serves a folder over HTTP/1.1 with range
requests (RAUC streams bundles with them; the daemon resumes downloads with them), and counts
the bytes it sends per file, so a test can tell what an update actually downloaded.

    channel-server.py ADDRESS PORT FOLDER COUNTS_FILE

COUNTS_FILE gets one line per answered request: "<path> <bytes of body sent>".
Python's own http.server has no ranges, so it cannot stand in for a real channel here.
"""

import http.server
import os
import re
import sys
import threading

ADDRESS, PORT, FOLDER, COUNTS = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
count_lock = threading.Lock()
CHUNK = 1 << 16


class Channel(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=FOLDER, **kwargs)

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def do_HEAD(self):
        self.answer(body=False)

    def do_GET(self):
        self.answer(body=True)

    def answer(self, body):
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.send_error(404)
            return
        size = os.path.getsize(path)
        start, end = 0, size - 1
        status = 200
        asked = self.headers.get("Range")
        if asked:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", asked.strip())
            if not m or (m.group(1) == "" and m.group(2) == ""):
                self.send_error(416)
                return
            if m.group(1) == "":  # the last N bytes
                start = max(0, size - int(m.group(2)))
            else:
                start = int(m.group(1))
                if m.group(2) != "":
                    end = min(int(m.group(2)), size - 1)
            if start >= size or start > end:
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % size)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        length = end - start + 1
        self.send_response(status)
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        self.end_headers()
        sent = 0
        try:
            if body:
                with open(path, "rb") as f:
                    f.seek(start)
                    while sent < length:
                        data = f.read(min(CHUNK, length - sent))
                        if not data:
                            break
                        self.wfile.write(data)
                        sent += len(data)
        finally:
            # Counted even when the client hangs up midway (what it was sent, it cost).
            with count_lock, open(COUNTS, "a") as out:
                out.write("%s %d\n" % (self.path, sent))


http.server.ThreadingHTTPServer((ADDRESS, PORT), Channel).serve_forever()
