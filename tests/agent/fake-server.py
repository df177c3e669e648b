#!/usr/bin/env python3
# A scripted ringfenced for agent-server-trust.sh: it plays a server that is wrong or
# compromised (it cannot sign anything: the TUF repository it serves is the real, signed one).
# Usage: fake-server.py PORT-FILE LOG REPO-DIR CONFIG
#   binds 127.0.0.1 on a free port and writes it to PORT-FILE; every request is one line of LOG
#   ("ENROLL n ring", "CHECKIN n status credential", "GET path status", "REPORT event").
# CONFIG is a JSON file read at each request (the test rewrites it between phases; a new
# "phase" starts the counts of enrollments and check-ins again):
#   rings     the ring each enrollment reply names, in order (the last one repeats)
#   checkins  the status of each check-in reply, in order (the last one repeats): 200 offers
#             the release; 401, 403 (the credential/device refusal), 500 with an error body
#   release   {"target", "sha256", "length"}: what a 200 offers
# /repo/PATH serves REPO-DIR/PATH; a path with an empty segment ("//") is a 404, like a CDN.
import http.server
import json
import os
import sys
import threading
import time

PORT_FILE, LOG, REPO, CONFIG = sys.argv[1:5]
lock = threading.Lock()
count = {"enroll": 0, "checkin": 0, "phase": None}


def log(line):
    with lock, open(LOG, "a") as f:
        f.write(line + "\n")


def pick(seq, i):
    return seq[min(i, len(seq) - 1)]


ERRORS = {
    401: ("unauthorized", None, "unknown device: enroll first"),
    403: ("forbidden", "device_id", "this credential does not belong to this device"),
    500: ("internal", None, "storage: the database is away"),
}


class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def send(self, code, obj):
        b = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def error(self, code):
        c, field, msg = ERRORS.get(code, ("error", None, "error %d" % code))
        e = {"status": code, "code": c, "message": msg}
        if field:
            e["field"] = field
        self.send(code, {"error": e})

    def do_GET(self):
        path = self.path.split("?")[0]
        p = os.path.join(REPO, path[len("/repo/"):]) if path.startswith("/repo/") else ""
        if not p or "//" in path or ".." in path or not os.path.isfile(p):
            log("GET %s 404" % path)
            return self.error(404)
        b = open(p, "rb").read()
        log("GET %s 200" % path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(n) or b"{}")
        cfg = json.load(open(CONFIG))
        with lock:
            if count["phase"] != cfg["phase"]:
                count.update(enroll=0, checkin=0, phase=cfg["phase"])
        cred = self.headers.get("Authorization", "").replace("Bearer ", "")
        if self.path == "/v1/enroll":
            with lock:
                i = count["enroll"]
                count["enroll"] += 1
            ring = pick(cfg["rings"], i)
            log("ENROLL %d %s" % (i + 1, ring))
            return self.send(201, {"device_id": body["device_id"], "tenant": "t", "ring": ring,
                                   "credential": "rfd_%064x" % (i + 1), "poll_interval": 1})
        if self.path == "/v1/report":
            log("REPORT %s" % body.get("event", "?"))
            return self.send(201, {"recorded": True})
        if self.path == "/v1/checkin":
            with lock:
                i = count["checkin"]
                count["checkin"] += 1
            status = pick(cfg["checkins"], i)
            log("CHECKIN %d %d %s" % (i + 1, status, cred))
            if status != 200:
                return self.error(status)
            rel = dict(cfg["release"], id=1, version=1)
            return self.send(200, {"action": "install", "reason": "new-release", "release": rel,
                                   "rollback_to": None, "halted": [], "poll_interval": 1,
                                   "server_time": int(time.time())})
        self.error(404)


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
srv.serve_forever()
