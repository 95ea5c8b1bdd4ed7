#!/usr/bin/env bash
# Regenerate the figures of docs/BENCHMARKS.md on this machine.
#
#   scripts/bench.sh [OUT]          (default OUT: bench-results/, git-ignored)
#
# 1. builds MobileNet v1 (224x224, Keras weights=None, BatchNorm calibrated on a batch) and 32
#    photo-like 640x480 JPEGs, and times `tritonkit build-repo` with default flags;
# 2. times `tritonkit serve` from launch to ready;
# 3. runs `tritonkit bench --reference` over HTTP and gRPC at concurrency 1, 4, 16;
# 4. writes the JSON/CSV/PNG files to OUT and the table between the markers of
#    docs/BENCHMARKS.md.
#
# Figures are only as quiet as the machine: the script waits (up to BENCH_WAIT_S, default 600 s)
# for the 1-minute load average to drop below BENCH_MAX_LOAD (default 0.5) and records the load
# of every level in the JSON. Environment: BENCH_DURATION (s per level, default 20),
# BENCH_PORT_BASE (default 18000), BENCH_SKIP_BUILD=1 to reuse OUT's model and repository,
# BENCH_TABLE_ONLY=1 to only rewrite the table from the files already in OUT.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/.venv/bin"
OUT="$(mkdir -p "${1:-$ROOT/bench-results}" && cd "${1:-$ROOT/bench-results}" && pwd)"
DURATION="${BENCH_DURATION:-20}"
PORT="${BENCH_PORT_BASE:-18000}"
HTTP_PORT=$PORT GRPC_PORT=$((PORT + 1)) METRICS_PORT=$((PORT + 2))
REPO="$OUT/model_repository"
export TF_CPP_MIN_LOG_LEVEL=2

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }

wait_for_quiet() {
    local limit="${BENCH_MAX_LOAD:-0.5}" waited=0 max="${BENCH_WAIT_S:-600}"
    while python3 -c "import os, sys; sys.exit(os.getloadavg()[0] < $limit)"; do
        if [ "$waited" -ge "$max" ]; then
            echo "load still $(cut -d' ' -f1 /proc/loadavg) after ${max}s; measuring anyway" >&2
            return
        fi
        sleep 10
        waited=$((waited + 10))
    done
}

if [ "${BENCH_TABLE_ONLY:-0}" = 1 ]; then
    :
elif [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    echo "== model and images"
    "$BIN/python" - "$OUT" <<'EOF'
import sys
from pathlib import Path

from tritonkit.bench import write_photos
from tritonkit.demo._mobilenet import build_mobilenet

out = Path(sys.argv[1])
build_mobilenet(out / "mobilenet.keras")
write_photos(out / "photos", 32, size=(640, 480), seed=0)
EOF
    rm -rf "$REPO" "$OUT/.model_repository.tritonkit"
    wait_for_quiet
    echo "== build-repo (default flags)"
    start=$(now)
    "$BIN/tritonkit" build-repo "$OUT/mobilenet.keras" --name mobilenet --repo "$REPO" > "$OUT/build-repo.log"
    elapsed "$start" "$(now)" > "$OUT/build_repo_seconds"
    echo "build-repo: $(cat "$OUT/build_repo_seconds") s"
fi

if [ "${BENCH_TABLE_ONLY:-0}" != 1 ]; then
echo "== serve"
wait_for_quiet
start=$(now)
"$BIN/tritonkit" serve --repo "$REPO" --http-port "$HTTP_PORT" --grpc-port "$GRPC_PORT" \
    --metrics-port "$METRICS_PORT" > "$OUT/serve.log" 2>&1 &
SERVE_PID=$!
trap 'kill $SERVE_PID 2>/dev/null; wait $SERVE_PID 2>/dev/null || true' EXIT
until curl -sf "http://127.0.0.1:$HTTP_PORT/v2/health/ready" > /dev/null; do
    kill -0 "$SERVE_PID" || { cat "$OUT/serve.log"; exit 1; }
    sleep 0.05
done
elapsed "$start" "$(now)" > "$OUT/serve_ready_seconds"
echo "serve to ready: $(cat "$OUT/serve_ready_seconds") s"

for protocol in http grpc; do
    port=$HTTP_PORT
    [ "$protocol" = grpc ] && port=$GRPC_PORT
    wait_for_quiet
    echo "== bench over $protocol"
    "$BIN/tritonkit" bench --model mobilenet --url "$protocol://127.0.0.1:$port" \
        --metrics-url "http://127.0.0.1:$METRICS_PORT/metrics" --concurrency 1,4,16 \
        --duration "$DURATION" --warmup 3 --images "$OUT/photos" --reference --repo "$REPO" \
        --json "$OUT/bench-$protocol.json" --csv "$OUT/bench-$protocol.csv" --plot "$OUT/bench-$protocol.png"
done

kill "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null || true
trap - EXIT

cp "$OUT/bench-http.png" "$ROOT/docs/benchmarks.png"
fi
"$BIN/python" - "$OUT" "$ROOT/docs/BENCHMARKS.md" <<'PY'
"""Render the figures of OUT as the table between the markers of docs/BENCHMARKS.md."""
import json
import sys
from pathlib import Path

out, doc = Path(sys.argv[1]), Path(sys.argv[2])
runs = {p: json.loads((out / f"bench-{p}.json").read_text()) for p in ("http", "grpc")}
build_s = float((out / "build_repo_seconds").read_text())
ready_s = float((out / "serve_ready_seconds").read_text())


def fmt(value, digits=1, suffix=""):
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def level(run, concurrency):
    return next(lv for lv in run["levels"] if lv["concurrency"] == concurrency)


def step(lv, suffix):
    models = (lv.get("server") or {}).get("models") or []
    return next((m for m in models if m["model"].endswith(suffix)), {})


def verdict(ok):
    return "met" if ok else "**not met**"


def others(lv):
    """Cores used by everything but this benchmark and the server: other people's work."""
    ours = sum(p["cpu_cores"] for p in lv["server"]["processes"]) + lv["client_cpu_s"] / lv["elapsed_s"]
    return max(0.0, lv["load"]["busy_cores"] - ours)


rss = max(lv["server"]["rss_mib"] or 0 for run in runs.values() for lv in run["levels"])
pss = max(lv["server"]["pss_mib"] or 0 for run in runs.values() for lv in run["levels"])
ratios = {p: level(r, 16)["throughput_vs_reference"] for p, r in runs.items()}
latency = {p: level(r, 1)["p50_vs_reference"] for p, r in runs.items()}
machine = runs["http"]["machine"]
lines = [
    f"Measured {runs['http']['started']} on {machine['cores']} cores ({machine['cpu_model']}), "
    f"{machine['memory_gib']} GiB, {machine['system']}; Python {machine['python']}, "
    f"onnxruntime {machine['onnxruntime']}. Workload: {runs['http']['workload']}.",
    "",
    "| target | goal | measured | |",
    "| --- | --- | --- | --- |",
    f"| throughput at concurrency 16 / in-process reference | >= 0.90x | "
    f"{ratios['http']:.2f}x (HTTP), {ratios['grpc']:.2f}x (gRPC) | {verdict(max(ratios.values()) >= 0.9)} |",
    f"| p50 latency at concurrency 1 / in-process single image | <= 1.15x | "
    f"{latency['http']:.2f}x (HTTP), {latency['grpc']:.2f}x (gRPC) | {verdict(min(latency.values()) <= 1.15)} |",
    f"| server + stub resident memory (peak of the summed RSS, all levels) | <= 400 MB | "
    f"{rss:.0f} MiB = {rss * 1.048576:.0f} MB (PSS {pss:.0f} MiB) | "
    + ("met" if rss * 1.048576 <= 400 else "met in MiB, **not** in 10^6 bytes" if rss <= 400 else "**not met**")
    + " |",
    f"| `build-repo` of the model | <= 30 s | {build_s:.1f} s | {verdict(build_s <= 30)} |",
    f"| `serve` to ready | <= 5 s | {ready_s:.1f} s | {verdict(ready_s <= 5)} |",
    "",
]
for protocol, run in runs.items():
    ref = run["reference"]
    best = ref["best"]
    lines += [
        f"**{protocol.upper()}**. In-process reference: {ref['throughput']:.1f} images/s "
        f"({best['streams']} stream(s) x {best['intra_op_threads']} thread(s), batch {best['batch_size']}; "
        f"runs before/after {' / '.join(f'{r:.1f}' for r in ref['throughput_runs'])}); one image "
        f"{ref['latency_ms']:.2f} ms ({ref['latency_threads']} thread(s)"
        f"{', spinning' if ref['latency_spinning'] else ''}; runs "
        f"{' / '.join(f'{r:.2f}' for r in ref['latency_runs'])}).",
        "",
        "| concurrency | req/s | vs ref | p50 ms | p90 ms | p99 ms | errors | batch pre / cls "
        "| queue ms pre / cls | infer ms pre / cls | server CPU ms/req | client CPU ms/req | load | busy cores "
        "| others' cores |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for lv in run["levels"]:
        pre, cls = step(lv, "_preprocess"), step(lv, "_classifier")
        server_cpu = sum(p["cpu_ms_per_request"] or 0 for p in lv["server"]["processes"])
        errors = sum(lv["errors"].values())
        lines.append(
            f"| {lv['concurrency']} | {lv['throughput']:.1f} | {fmt(lv['throughput_vs_reference'], 2, 'x')} "
            f"| {lv['latency']['p50_ms']:.1f} | {lv['latency']['p90_ms']:.1f} | {lv['latency']['p99_ms']:.1f} "
            f"| {errors} | {fmt(pre.get('avg_batch_size'), 2)} / {fmt(cls.get('avg_batch_size'), 2)} "
            f"| {fmt(pre.get('avg_queue_ms'), 2)} / {fmt(cls.get('avg_queue_ms'), 2)} "
            f"| {fmt(pre.get('avg_compute_infer_ms'), 2)} / {fmt(cls.get('avg_compute_infer_ms'), 2)} "
            f"| {server_cpu:.2f} | {fmt(lv['client_cpu_ms_per_request'], 2)} "
            f"| {lv['load']['loadavg_start']} -> {lv['load']['loadavg_end']} | {lv['load']['busy_cores']} "
            f"| {others(lv):.2f} |"
        )
    lines.append("")

begin, end = "<!-- bench-table:begin -->", "<!-- bench-table:end -->"
head, rest = doc.read_text().split(begin, 1)
_, tail = rest.split(end, 1)
doc.write_text(head + begin + "\n" + "\n".join(lines) + end + tail)
PY
echo "== wrote $OUT and the table of docs/BENCHMARKS.md"
