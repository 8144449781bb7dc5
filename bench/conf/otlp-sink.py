#!/usr/bin/env python3
"""A minimal OTLP/HTTP trace sink for the benchmark: accepts every POST to /v1/traces with 200 and an empty
ExportTraceServiceResponse (a valid empty protobuf) and counts requests and bytes, which GET /counts returns. It
stands in for a collector so that the sidecar's export path (batching, the protobuf encoding, the HTTP client through
the collector's cluster) is measured; it does not parse spans. Usage: otlp-sink.py PORT"""
import http.server, sys, threading

port = int(sys.argv[1])
lock = threading.Lock()
counts = {"requests": 0, "bytes": 0}


class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, as a collector serves it

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        with lock:
            counts["requests"] += 1
            counts["bytes"] += len(body)
        status = 200 if self.path == "/v1/traces" else 404
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        with lock:
            body = f"otlp_requests={counts['requests']}\notlp_bytes={counts['bytes']}\n".encode()
        self.send_response(200 if self.path == "/counts" else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", port), Sink).serve_forever()
