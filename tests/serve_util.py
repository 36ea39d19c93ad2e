"""What the `lsllama serve` tests share: the paths ctest passes, training small
adapters with the CLI, a server process on 127.0.0.1 at a free port, and an
HTTP client made of the standard library only (as a user's client would be)."""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

CLI = os.environ["LSLLAMA_CLI"]
SHARED = os.environ["LL_SHARED_DIR"]
STORIES = os.path.join(SHARED, "models", "stories260K", "stories260K.bin")
STORIES_TOK = os.path.join(SHARED, "models", "stories260K", "tok512.bin")
SST2 = os.path.join(SHARED, "data", "sst2")
CONLL = os.path.join(SHARED, "data", "conll2003")
SMOLLM2 = os.path.join(os.environ.get("LSLLAMA_CACHE", os.path.expanduser("~/.cache/lsllama")), "models",
                       "SmolLM2-135M-Instruct.Q4_1.gguf")

failures = []
n_checks = [0]


def check(cond, what):
    """Records a failed check (the test goes on, and fails at the end)."""
    n_checks[0] += 1
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    return cond


def finish():
    if failures:
        print(f"{len(failures)} of {n_checks[0]} checks failed", flush=True)
        sys.exit(1)
    print(f"all {n_checks[0]} checks passed", flush=True)


def run_cli(args, stdin=None, env=None):
    """Runs `lsllama ARGS`; returns stdout (text). Fails the test on a non-zero exit."""
    p = subprocess.run([CLI] + args, input=stdin, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"lsllama {' '.join(args)} exited {p.returncode}: {p.stderr}")
    return p.stdout


def sst2_sentences(split, n):
    with open(os.path.join(SST2, split), encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    return [r[0] for r in rows[:n]]


def conll_sentences(split, n):
    """The first n sentences of a CoNLL file, words joined by spaces."""
    out, words = [], []
    with open(os.path.join(CONLL, split), encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if not parts:
                if words:
                    out.append(" ".join(words))
                    words = []
                    if len(out) == n:
                        break
            elif parts[0] != "-DOCSTART-":
                words.append(parts[0])
    return out


def write_lines(path, n_lines, src):
    with open(src, encoding="utf-8") as f, open(path, "w", encoding="utf-8") as g:
        for i, line in enumerate(f):
            if i >= n_lines:
                break
            g.write(line)


class Server:
    """`lsllama serve ARGS` on 127.0.0.1 at a free port (--port 0 --port-file)."""

    def __init__(self, args, workdir, env=None):
        self.port_file = os.path.join(workdir, f"port-{time.monotonic_ns()}")
        self.log_path = self.port_file + ".log"
        self.log = open(self.log_path, "w")
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen([CLI, "serve"] + args + ["--port", "0", "--port-file", self.port_file],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=e)
        deadline = time.monotonic() + 120
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start: " + open(self.log_path).read())
            time.sleep(0.05)
        self.port = int(open(self.port_file).read())

    def request(self, method, path, body=None, headers=None, timeout=120):
        """(status, headers dict, body bytes). body: bytes, str, or an object sent as JSON."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode("utf-8")
        h = {"Content-Type": "application/json"} if body is not None else {}
        h.update(headers or {})
        conn.request(method, path, body=body, headers=h)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, dict(resp.getheaders()), data

    def post(self, path, obj, **kw):
        return self.request("POST", path, obj, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def healthy(self):
        return self.get("/health")[0] == 200

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Signals the server; returns its exit status."""
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = "killed after timeout"
        self.log.close()
        return rc

    def log_text(self):
        return open(self.log_path).read()


def tei_error(status, body, code, error_type=None):
    """A TEI error answer: the status, {"error": str, "error_type": str}."""
    try:
        obj = json.loads(body)
    except ValueError:
        return False
    ok = status == code and isinstance(obj, dict) and isinstance(obj.get("error"), str) and obj["error"] and \
        isinstance(obj.get("error_type"), str) and set(obj) == {"error", "error_type"}
    return ok and (error_type is None or obj["error_type"] == error_type)


def openai_error(status, body, code):
    try:
        obj = json.loads(body)
    except ValueError:
        return False
    e = obj.get("error") if isinstance(obj, dict) else None
    return status == code and isinstance(e, dict) and isinstance(e.get("message"), str) and "type" in e


def raw_exchange(port, data, read=True, timeout=10):
    """Sends raw bytes on a new connection; returns what comes back until the server closes (or b"" if not read)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    out = b""
    if read:
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
    s.close()
    return out


def tempdir():
    return tempfile.mkdtemp(prefix="lsllama-serve-")
