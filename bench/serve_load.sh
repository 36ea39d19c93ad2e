#!/usr/bin/env bash
# Load on `lsllama serve`: wrk on loopback POSTs {"inputs": "<sentence>"} to /predict, cycling through the 872 SST-2
# dev sentences (each wrk thread from the first), at 1, 8 and 64 connections (threads min(conns, 2)), DURATION
# seconds each, with SmolLM2-135M and a sequence-classification adapter trained for 5 steps on 400 SST-2 sentences
# (or ADAPTER=DIR: a trained adapter folder). Before the load, one pass of the dev sentences in requests of 32
# inputs; after it (server stopped), `lsllama predict` over the same sentences, against which the pass's labels and
# the server's token count are checked.
# Prints per connection count: requests/s, p50 and p99 latency (wrk's, in ms), the non-2xx responses (any of them,
# or a socket error, fails the run), the mean tokens per forward batch, the server's tokens/s: the tokens admitted
# (lsllama_input_tokens_total of /metrics) from the run's start until the requests wrk left in flight are answered,
# over that time, and others_cpu_s: the CPU seconds the machine worked meanwhile beside the server and wrk (other
# processes; a figure well above 0 means the run shared the cores). Then the last (saturation) run's tokens/s against
# `lsllama predict`'s offline tokens/s on the same sentences (one whole process, and the same less a one-sentence
# run's start-up), and server / offline (the target: at least 0.85); the server's peak RSS (VmHWM); that it exits 0
# on SIGTERM.
# wrk runs on the same cores as the server: on a small machine its threads take CPU from the server's. It waits 60 s
# for an answer (its default, 2 s, is less than a 64-request batch takes on 2 cores).
#
# Usage: [DURATION=10] [CONNS="1 8 64"] [ADAPTER=DIR] [MODEL=FILE.gguf] [SERVE_OPTS="--max-batch-tokens N ..."]
#        [OMP_NUM_THREADS=N] [OMP_WAIT_POLICY=passive] bench/serve_load.sh [BUILD_DIR]
#   (BUILD_DIR default build; SERVE_OPTS: more options of `lsllama serve`, e.g. --http-threads 1; the last of
#    CONNS is the saturation run the tokens/s are measured on)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
CLI="$BUILD/lsllama"
M="${MODEL:-${LSLLAMA_CACHE:-$HOME/.cache/lsllama}/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
D="$ROOT/../shared/data/sst2"
DURATION="${DURATION:-10}"
CONNS="${CONNS:-1 8 64}"
SERVE_OPTS="${SERVE_OPTS:-}"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
[[ -x "$CLI" ]] || { echo "error: $CLI: not found (cmake --build build --target lsllama_cli)" >&2; exit 2; }
[[ -f "$M" ]] || { echo "error: $M: not found (scripts/setup.sh fetches it)" >&2; exit 2; }
for t in wrk curl python3 bc /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "error: $t is needed" >&2; exit 2; }
done
tmp=$(mktemp -d)
spid=""
cleanup() {
  if [[ -n "$spid" ]] && kill -0 "$spid" 2>/dev/null; then kill -TERM "$spid"; wait "$spid" || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
die() { echo "error: $*" >&2; if [[ -s "$tmp/serve.log" ]]; then echo "server log:" >&2; tail -20 "$tmp/serve.log" >&2; fi; exit 1; }

calc() { LC_ALL=C printf "%.${1}f" "$(echo "scale=6; $2" | bc)"; } # DIGITS, EXPRESSION: its value

echo "cpu: $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), nproc $(nproc)"
echo "threads: OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset} OMP_WAIT_POLICY=$OMP_WAIT_POLICY; serve options: ${SERVE_OPTS:-(defaults)}"
echo "model: $M; $DURATION s per run; connections: $CONNS"

# The sentences, one per line, and the wrk script that posts them.
tail -n +2 "$D/dev.tsv" | cut -f1 > "$tmp/dev.txt"
n_sent=$(wc -l < "$tmp/dev.txt")
python3 - "$tmp/dev.txt" "$tmp/predict.lua" <<'PY'
import json, sys
texts = [l.rstrip("\n") for l in open(sys.argv[1], encoding="utf-8")]
def lua(s):  # a Lua string literal of the UTF-8 bytes of s: printable ASCII as is, the rest as \ddd
    return '"' + "".join(chr(b) if 32 <= b < 127 and b not in (34, 92) else "\\%03d" % b
                         for b in s.encode("utf-8")) + '"'
with open(sys.argv[2], "w") as f:
    f.write("local bodies = {\n")
    f.writelines("  %s,\n" % lua(json.dumps({"inputs": t})) for t in texts)
    f.write("""}
local i = 0
local headers = {["Content-Type"] = "application/json"}
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", "/predict", headers, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status, e.connect, e.read, e.write, e.timeout))
end
""")
PY

# The adapter.
if [[ -n "${ADAPTER:-}" ]]; then
  A="$ADAPTER"
else
  head -n 401 "$D/train.tsv" > "$tmp/train.tsv"
  head -n 101 "$D/dev.tsv" > "$tmp/devsmall.tsv"
  "$CLI" train "$M" --train "$tmp/train.tsv" --dev "$tmp/devsmall.tsv" --out "$tmp/run" --max-steps 5 \
    --no-progress > "$tmp/train.log" 2>&1 || { tail -5 "$tmp/train.log" >&2; die "training the adapter failed"; }
  A="$tmp/run/best"
fi
[[ -d "$A" ]] || die "$A: no adapter folder"
echo "adapter: ${ADAPTER:-trained here (5 steps, 400 sentences)}"

tokens=$("$CLI" tokenize "$M" < "$tmp/dev.txt" | awk '{n += NF} END {print n}')
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; } # jiffies the machine's CPUs worked
own() { awk '{print $14 + $15}' "/proc/$1/stat"; }                         # jiffies of process $1
hz=$(getconf CLK_TCK)

# The server.
# shellcheck disable=SC2086
"$CLI" serve "$M" --adapter "$A" --port 0 --port-file "$tmp/port" $SERVE_OPTS > "$tmp/serve.log" 2>&1 &
spid=$!
for _ in $(seq 600); do
  [[ -s "$tmp/port" ]] && break
  kill -0 "$spid" 2>/dev/null || die "the server exited before listening"
  sleep 0.1
done
[[ -s "$tmp/port" ]] || die "no port file after 60 s"
URL="http://127.0.0.1:$(cat "$tmp/port")"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")
[[ "$code" == 200 ]] || die "GET /health answered $code"
echo "server: pid $spid, $URL, GET /health 200, $(grep -m1 -o '([^)]*threads)' "$tmp/serve.log" || true)"
metric() { # the value of an unlabelled metric of /metrics
  curl -sf "$URL/metrics" | awk -v k="$1" '$1 == k {print $2; f = 1} END {if (!f) exit 1}' || die "no $1 in /metrics"
}

# One pass in requests of 32 inputs: its answers, checked against lsllama predict's at the end.
k0=$(metric lsllama_input_tokens_total)
python3 - "$URL" "$tmp/dev.txt" > "$tmp/served.json" <<'PY' || die "the checking pass failed"
import json, sys, time, urllib.request
url, texts = sys.argv[1], [l.rstrip("\n") for l in open(sys.argv[2], encoding="utf-8")]
served = []
for i in range(0, len(texts), 32):
    req = urllib.request.Request(url + "/predict", json.dumps({"inputs": texts[i:i + 32]}).encode(),
                                 {"Content-Type": "application/json"})
    t0 = time.time()
    try:
        with urllib.request.urlopen(req) as r:
            served += json.load(r)
    except Exception as e:
        sys.exit("request %d (sentences %d..%d) failed after %.3f s: %r" % (i // 32, i, i + 31, time.time() - t0, e))
json.dump(served, sys.stdout)
PY
k1=$(metric lsllama_input_tokens_total)
check_tokens=$((k1 - k0))

# The load. Tokens/s: the tokens admitted from the run's start until every request admitted is answered or dropped
# (wrk leaves up to CONNS requests in flight at its end, which the server still computes), over that time.
# others_cpu_s: CPU seconds the machine worked meanwhile beside the server and wrk (other processes, this script).
drain() { # waits until no request is queued or running, at most 120 s
  local n
  for _ in $(seq 1200); do
    n=$(metric lsllama_requests_in_flight)
    ((n <= 0)) && { ((n == 0)) || echo "warning: lsllama_requests_in_flight is $n" >&2; return 0; }
    sleep 0.1
  done
  die "requests still in flight 120 s after the load"
}
printf '%5s %9s %9s %9s %8s %10s %10s %13s\n' conns req_per_s p50_ms p99_ms non_2xx batch_tok tok_per_s others_cpu_s
for c in $CONNS; do
  th=$((c < 2 ? c : 2))
  k0=$(metric lsllama_input_tokens_total); b0=$(metric lsllama_batch_tokens_sum); n0=$(metric lsllama_batch_tokens_count)
  j0=$(busy); s0=$(own "$spid"); t0=$(date +%s.%N)
  /usr/bin/time -f '%U %S' -o "$tmp/wrk.cpu" wrk -t "$th" -c "$c" -d "${DURATION}s" --timeout 60s --latency \
    -s "$tmp/predict.lua" "$URL/predict" > "$tmp/wrk.$c" 2>&1 || { cat "$tmp/wrk.$c" >&2; die "wrk failed at $c connections"; }
  drain
  t1=$(date +%s.%N); j1=$(busy); s1=$(own "$spid")
  k1=$(metric lsllama_input_tokens_total); b1=$(metric lsllama_batch_tokens_sum); n1=$(metric lsllama_batch_tokens_count)
  read -r _ nreq dur p50 p99 e_status e_conn e_read e_write e_timeout < <(grep '^RESULT ' "$tmp/wrk.$c") \
    || { cat "$tmp/wrk.$c" >&2; die "no figures from wrk at $c connections"; }
  read -r wu ws < "$tmp/wrk.cpu"
  tps=$(calc 1 "($k1 - $k0) / ($t1 - $t0)")
  printf '%5s %9s %9s %9s %8s %10s %10s %13s\n' "$c" "$(calc 1 "$nreq * 1000000 / $dur")" \
    "$(calc 1 "$p50 / 1000")" "$(calc 1 "$p99 / 1000")" "$e_status" \
    "$(calc 1 "($b1 - $b0) / ($n1 - $n0)")" "$tps" \
    "$(calc 1 "($j1 - $j0 - $s1 + $s0) / $hz - $wu - $ws")"
  if ((e_status || e_conn || e_read || e_write || e_timeout)); then
    cat "$tmp/wrk.$c" >&2
    die "$c connections: $e_status non-2xx responses; socket errors: connect $e_conn, read $e_read, write $e_write, timeout $e_timeout"
  fi
  ((k1 - k0 == b1 - b0)) || echo "warning: $c connections: $((k1 - k0)) tokens admitted, $((b1 - b0)) computed"
  srv_tps=$tps; sat_tokens=$((k1 - k0)); sat_secs=$(calc 1 "$t1 - $t0"); last=$c
done
# Every answer of the server, by route and status (wrk's count above is of statuses >= 400 only).
bad=$(curl -sf "$URL/metrics" | awk '/^lsllama_requests_total\{/ && !/status="2[0-9][0-9]"/ && $2 > 0' || true)
[[ -z "$bad" ]] || die "the server answered non-2xx: $bad"
hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$spid/status")
kill -TERM "$spid"
rc=0
wait "$spid" || rc=$?
spid=""
[[ "$rc" == 0 ]] || die "the server exited $rc on SIGTERM"

# Offline, right after: `lsllama predict` over the sentences, and over one of them (start-up: model load, tokenizer,
# output).
head -n 1 "$tmp/dev.txt" > "$tmp/one.txt"
secs() { # OUT, command...: seconds of the command, its output into OUT, its CPU seconds into $tmp/cpu
  local t0 t1 out="$1"; shift
  t0=$(date +%s.%N)
  /usr/bin/time -f '%U %S' -o "$tmp/cpu" "$@" > "$out" 2> "$tmp/predict.err" \
    || die "$1 $2 failed: $(tail -3 "$tmp/predict.err")"
  t1=$(date +%s.%N); calc 2 "$t1 - $t0"
}
t_one=$(secs /dev/null "$CLI" predict "$M" --adapter "$A" --input "$tmp/one.txt" --no-progress)
j0=$(busy)
t_off=$(secs "$tmp/offline.jsonl" "$CLI" predict "$M" --adapter "$A" --input "$tmp/dev.txt" --no-progress)
j1=$(busy)
read -r pu ps < "$tmp/cpu"
off_others=$(calc 1 "($j1 - $j0) / $hz - $pu - $ps")
[[ "$(wc -l < "$tmp/offline.jsonl")" == "$n_sent" ]] || die "lsllama predict wrote $(wc -l < "$tmp/offline.jsonl") lines, not $n_sent"
off_tps=$(calc 1 "$tokens / $t_off")
off_tps_ex=$(calc 1 "$tokens / ($t_off - $t_one)")

read -r same n_served pdiff < <(python3 - "$tmp/served.json" "$tmp/offline.jsonl" <<'PY'
import json, sys
served = json.load(open(sys.argv[1]))
offline = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
same = sum(sc[0]["label"] == o["label"] for sc, o in zip(served, offline))
diff = max(abs(x["score"] - o["probabilities"][x["label"]]) for sc, o in zip(served, offline) for x in sc)
print(same, len(served), "%.2g" % diff)
PY
)
echo "server tokens/s at $last connections: $srv_tps ($sat_tokens tokens in $sat_secs s: the run and its drain)"
echo "offline tokens/s (lsllama predict, $n_sent sentences, $tokens tokens): $off_tps (whole process, $t_off s)," \
  "$off_tps_ex (less start-up, $t_one s); others_cpu_s $off_others"
echo "server / offline: $(calc 3 "$srv_tps / $off_tps") (whole process)," \
  "$(calc 3 "$srv_tps / $off_tps_ex") (less start-up); target >= 0.85"
echo "server peak RSS (VmHWM): $(calc 1 "$hwm / 1024") MB"
echo "server: SIGTERM, exit 0"
echo "check (one pass in requests of 32): server labels = lsllama predict's for $same of $n_served sentences" \
  "(probabilities within $pdiff); tokens: server $check_tokens, lsllama tokenize $tokens"
[[ "$n_served" == "$n_sent" ]] || die "the server answered $n_served of $n_sent sentences"
[[ "$same" == "$n_sent" ]] || echo "warning: the server's labels differ from lsllama predict's"
[[ "$check_tokens" == "$tokens" ]] || echo "warning: the server counts other tokens than lsllama tokenize"
if [[ -s "$tmp/serve.log" ]]; then echo "server log:"; sed 's/^/  /' "$tmp/serve.log"; fi
