#!/usr/bin/env bash
# Runs every benchmark of go-context (the criterion scenarios and the harness=false binaries
# for S5m/S11, S6/S6t and S8), the macro benches S9/S10 of context-tests, plus the Go twins when
# a Go toolchain is found (BENCH_GO=0 skips them), then prints a markdown table with every row
# of BENCHMARKS.md: medians, same-run ratios and the verdict against its target (a row whose
# benchmark was not run says "not measured").
# Every figure comes from this run's output; nothing is hard-coded.
#
# Usage: scripts/bench.sh [criterion args, e.g. --measurement-time 5]
# Honours CARGO_TARGET_DIR; raw outputs go to $CARGO_TARGET_DIR/bench-out.
# About 6-8 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
# Absolute: criterion runs each bench from its package's directory.
target="$(realpath -m "${CARGO_TARGET_DIR:-$root/target}")"
export CARGO_TARGET_DIR="$target"
export CRITERION_HOME="$target/criterion"
out="$target/bench-out"
rm -rf "$CRITERION_HOME" "$out"
mkdir -p "$out"

load_before="$(uptime | sed 's/.*load average: //')"
started="$(date -u '+%Y-%m-%d %H:%M UTC')"

cargo bench -p go-context --bench scenarios -- --noplot "$@" | tee "$out/scenarios.txt"
for bin in paired latency memory deep_chain; do
  cargo bench -p go-context --bench "$bin" | tee "$out/$bin.txt"
done
# S9 and S10 (the macros' costs) live in context-tests; S13 in context-tower.
for bench in s9_cancellable s10_go; do
  if [ -e "tests/benches/$bench.rs" ]; then
    cargo bench -p context-tests --bench "$bench" -- --noplot "$@" | tee "$out/$bench.txt"
  fi
done
# S10 as paired alternating rounds too (`RESULT paired S10 …` lines).
if [ -e tests/benches/s10_go.rs ]; then
  S10_PAIRED=1 cargo bench -p context-tests --bench s10_go | tee "$out/s10_paired.txt"
fi
if [ -e context-tower/benches/s13_layers.rs ]; then
  cargo bench -p context-tower --features tonic --bench s13_layers -- --noplot "$@" | tee "$out/s13.txt"
  # The same rows as paired alternating rounds (`RESULT paired S13 …` lines); with feature
  # `tonic`, the gRPC rows against tonic's own deadline too.
  S13_PAIRED=1 cargo bench -p context-tower --features tonic --bench s13_layers | tee "$out/s13_paired.txt"
fi
if [ "${BENCH_GO:-1}" != 0 ]; then
  "$root/scripts/bench-go.sh" | tee "$out/go.txt"
fi
load_after="$(uptime | sed 's/.*load average: //')"

python3 - "$CRITERION_HOME" "$out" "$started" "$load_before" "$load_after" \
  "$(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- context-core/src || echo '+dirty')" \
  "$(rustc --version)" <<'PY'
import json, os, re, sys

crit, out, started, load_before, load_after, commit, rustc = sys.argv[1:8]

# Criterion medians in ns; per-element benches (a numeric parameter) divided by it.
med = {}
elems = {}
for dirpath, _, files in os.walk(crit):
    if "benchmark.json" in files and os.path.basename(dirpath) == "new":
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            b = json.load(f)
        with open(os.path.join(dirpath, "estimates.json")) as f:
            e = json.load(f)
        ns = e["median"]["point_estimate"]
        if b.get("value_str"):
            ns /= float(b["value_str"])
        med[(b["group_id"], b["function_id"])] = ns
        # Elements per iteration of a group with a throughput (S13/throughput).
        if isinstance(b.get("throughput"), dict) and "Elements" in b["throughput"]:
            elems[(b["group_id"], b["function_id"])] = float(b["throughput"]["Elements"])

def result_lines(name):
    rows = {}
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return rows
    for line in open(path):
        if line.startswith("RESULT "):
            parts = line.split()
            rows[(parts[1], parts[2])] = {k: float(v) for k, v in (p.split("=") for p in parts[3:])}
    return rows

lat = result_lines("latency.txt")
# Paired rounds (benches/paired.rs): `RESULT paired <id with spaces> ratio=… p10=… p90=… …`.
paired = {}
for ppath in (os.path.join(out, "paired.txt"), os.path.join(out, "s13_paired.txt"),
              os.path.join(out, "s10_paired.txt")):
    if not os.path.exists(ppath):
        continue
    for line in open(ppath):
        if line.startswith("RESULT paired "):
            words = line.split()[2:]
            keys = [w for w in words if "=" in w]
            id_ = " ".join(w for w in words if "=" not in w)
            paired[id_] = {k: float(v) for k, v in (w.split("=") for w in keys)}
mem = result_lines("memory.txt")
deep = result_lines("deep_chain.txt")

go = {}
gopath = os.path.join(out, "go.txt")
if os.path.exists(gopath):
    for line in open(gopath):
        m = re.match(r"^Benchmark(\S+?)(-\d+)?\s+\d+\s+(.*)$", line)
        if not m:
            continue
        vals = re.findall(r"([\d.]+) (\S+)", m.group(3))
        go[m.group(1)] = {unit: float(v) for v, unit in vals}

# The paired rounds of latency.rs (`RESULT <id> ratio median=…`): S4w's (a task runtime per
# side), and S6's and S6t's (the median of the per-round ratios of medians; S6t against the
# park/unpark floor).
for rid, row_id in (("S4wp", "S4w"), ("S6p", "S6"), ("S6tp", "S6t")):
    r = lat.get((rid, "ratio"))
    if r:
        paired[row_id] = {"ratio": r["median"], "p10": r["p10"], "p90": r["p90"]}

def c(group, fn):
    return med.get((group, fn))

def g(name, unit="ns/op"):
    return go.get(name, {}).get(unit)

def fmt_ns(ns):
    if ns is None:
        return "—"
    if ns >= 1e6:
        return f"{ns/1e6:.3g} ms"
    if ns >= 1e3:
        return f"{ns/1e3:.3g} µs"
    return f"{ns:.3g} ns"

def fmt_b(b):
    return "—" if b is None else f"{b:.0f} B"

rows = []

def row(id_, scenario, ours, peer, floor, gov, num, den, limit, against, fmt=fmt_ns, extra=""):
    ratio = None if num is None or den is None else num / den
    p = paired.get(id_)
    # The verdict: the paired median where the row has one (the medians of criterion's
    # back-to-back groups swing by ±25 % between runs at this scale), else criterion's ratio.
    decisive = p["ratio"] if p else ratio
    if decisive is None:
        verdict = "not measured"
    else:
        verdict = "met" if decisive <= limit + 1e-9 else "**missed**"
    rtxt = "—" if ratio is None else f"{ratio:.2f}× {against}"
    ptxt = "—" if p is None else f"{p['ratio']:.2f}× ({p['p10']:.2f}–{p['p90']:.2f})"
    rows.append((id_, scenario, fmt(ours), fmt(peer), fmt(floor), fmt(gov), rtxt, ptxt,
                 f"≤ {limit}× {against}{extra}", verdict))

o, t, f = c("S1_is_done", "ours"), c("S1_is_done", "tokio_util"), c("S1_is_done", "floor")
row("S1", "`is_done()`, live child with a deadline", o, t, f, g("S1"), o, f, 1.6, "floor")
o, t, f = (c("S1p_is_done_2threads", x) for x in ("ours", "tokio_util", "floor"))
row("S1p", "S1 on 2 threads, one context (per thread)", o, t, f, g("S1p"), o, f, 1.6, "floor")
o, t = c("S2_child_cancel_drop", "ours"), c("S2_child_cancel_drop", "tokio_util")
row("S2", "child `with_cancel` + cancel + drop", o, t, None, g("S2"), o, t, 0.7, "tokio-util")
o, t = c("S2p_child_cancel_drop_2threads", "ours"), c("S2p_child_cancel_drop_2threads", "tokio_util")
row("S2p", "S2 on 2 threads, one parent (per thread)", o, t, None, g("S2p"), o, t, 0.5, "tokio-util")
o, t = c("S3_timeout_child_cancel_drop", "ours"), c("S3_timeout_child_cancel_drop", "tokio_util_task")
row("S3", "child `with_timeout(1h)` + cancel + drop (tokio-util: child token + sleeping task)",
    o, t, None, g("S3"), o, g("S3"), 0.3, "Go")
for phase in ("create", "cancel"):
    o, t = c("S4_fanout", f"ours_{phase}"), c("S4_fanout", f"tokio_util_{phase}")
    row(f"S4 {phase}", f"fan-out of 10,000: {phase} (per child)", o, t, None,
        g(f"S4{phase.capitalize()}", "ns/child"), o, t, 1.0, "tokio-util")
o, t = c("S4w_fanout_wake", "ours"), c("S4w_fanout_wake", "tokio_util")
row("S4w", "fan-out, a task awaiting each child: cancel until all woken (per child)", o, t, None,
    g("S4w", "ns/child"), o, t, 0.8, "tokio-util")
for phase in ("create", "cancel"):
    o, t = c("S5_chain", f"ours_{phase}"), c("S5_chain", f"tokio_util_{phase}")
    row(f"S5 {phase}", f"chain of 10,000: {phase} (per level)", o, t, None,
        g(f"S5{phase.capitalize()}", "ns/level"), o, t, 1.0, "tokio-util")
do, dt = deep.get(("S5m", "ours")), deep.get(("S5m", "tokio_util"))
o = do and do["total_ms"] * 1e6
t = dt and dt["total_ms"] * 1e6
row("S5m", "chain of 1,000,000 on a 2 MiB stack: create + cancel + drop, once", o, t, None,
    g("S5m"), o, t, 1.0, "tokio-util", extra=" (works)" )
lo, lt = lat.get(("S6", "ours")), lat.get(("S6", "tokio_util"))
row("S6", "wake latency, cancel → awaiting task resumes (p50, same thread)",
    lo and lo["p50"], lt and lt["p50"], None, None, lo and lo["p50"], lt and lt["p50"], 1.0, "tokio-util")
lo, lf = lat.get(("S6t", "ours")), lat.get(("S6t", "floor"))
row("S6t", "wake latency, cancel → thread blocked in `wait()` resumes (p50)",
    lo and lo["p50"], None, lf and lf["p50"], g("S6t", "p50-ns"), lo and lo["p50"], lf and lf["p50"], 1.1, "floor")
for kind in ("deepest", "missing"):
    o, f = c("S7_value_depth10", f"ours_{kind}"), c("S7_value_depth10", f"floor_{kind}")
    row(f"S7 {kind}", f"`value::<T>()` at depth 10, {kind}", o, None, f,
        g(f"S7{kind.capitalize()}"), o, f, 1.5, "floor")

def mem_row(id_, scenario, ours, peer, gokey, limit):
    mo, mp = mem.get(ours), mem.get(peer)
    ob = mo and mo["bytes"]
    verdict = "not measured" if ob is None else ("met" if ob <= limit else "**missed**")
    def both(m):
        return "—" if m is None else f"{m['bytes']:.1f} B, {m['allocs']:.2f} allocs"
    gov = go.get(gokey)
    gtxt = "—" if gov is None else f"{gov['B/child']:.1f} B, {gov['allocs/child']:.2f} allocs"
    rows.append((id_, scenario, both(mo), both(mp), "—", gtxt, "—", "—", f"≤ {limit} B", verdict))

mem_row("S8", "memory per live child, 1,000,000 children", ("S8", "ours"), ("S8", "tokio_util"), "S8", 96)
mem_row("S8t", "same, timeout children (tokio-util: + sleeping task)", ("S8t", "ours"),
        ("S8t", "tokio_util_task"), "S8t", 128)

o, t = c("S9/loop_10k", "cancellable"), c("S9/loop_10k", "hand_written_check")
row("S9", "`#[cancellable]` loop vs the same loop with a hand-written `ctx.check()?` (per iteration)",
    o, None, t, None, o, t, 1.05, "hand-written")
o, t = c("S10/current_thread", "go!"), c("S10/current_thread", "tokio::spawn")
row("S10", "`go!` spawn + join of an async no-op vs `tokio::spawn` + join (current-thread runtime)",
    o, None, t, None, o, t, 1.3, "tokio::spawn")
do, dt = deep.get(("S11", "ours")), deep.get(("S11", "tokio_util"))
o = do and do["total_ms"] * 1e6
t = dt and dt["total_ms"] * 1e6
row("S11", "1,000,000 mixed layers (value, `with_cancel`, later `with_deadline`, `with_timeout_cause`) on a 2 MiB stack: create + cancel + drop, once (tokio-util: plain chain)",
    o, t, None, None, o, t, 1.0, "tokio-util", extra=" (linear)")
o, t = c("S12_request_2threads", "ours"), c("S12_request_2threads", "tokio_util")
row("S12", "a server's request, 2 threads, one parent (per thread; tokio-util: child token + `tokio::time::timeout`)",
    o, t, None, None, o, t, 0.8, "tokio-util")
# S13: context-tower/benches/s13_layers.rs, `layers` (ContextLayer + PropagateLayer) vs `bare`.
o, t = c("S13/latency", "layers"), c("S13/latency", "bare")
row("S13 latency", "`context-tower` layers vs none on a loopback HTTP/2 service: median latency of one request",
    o, None, t, None, o, t, 1.05, "no layers")
# Throughput in elements (requests) per second; the ratio is layers / bare of requests per
# second, so higher is better and the target is a floor.
o, t = c("S13/throughput", "layers"), c("S13/throughput", "bare")
n = elems.get(("S13/throughput", "layers"))
ops = None if o is None or n is None else n / o * 1e9
tps = None if t is None or n is None else n / t * 1e9
def fmt_rps(v):
    return "—" if v is None else f"{v/1e3:.3g} K req/s"
# The paired line is a ratio of times per batch (layers / bare): its inverse is the ratio of
# requests per second (and its 90th percentile the throughput's 10th).
p = paired.get("S13 throughput")
ptxt = "—" if p is None else f"{1 / p['ratio']:.2f}× ({1 / p['p90']:.2f}–{1 / p['p10']:.2f})"
decisive = 1 / p["ratio"] if p else (None if ops is None or tps is None else ops / tps)
rtxt = "—" if ops is None or tps is None else f"{ops / tps:.2f}× no layers"
if decisive is None:
    verdict = "not measured"
else:
    verdict = "met" if decisive >= 0.95 - 1e-9 else "**missed**"
rows.append(("S13 throughput", "same, throughput: 32 requests in flight on one connection (requests/s)",
             fmt_rps(ops), "—", fmt_rps(tps), "—", rtxt, ptxt, "≥ 0.95× no layers", verdict))


print()
print(f"Run: {started}, commit {commit}, {rustc}.")
print(f"Load average (1/5/15 min) before: {load_before}; after: {load_after}.")
print()
print("`ratio`: criterion's medians. `paired`: the median of the per-round ratios of short")
print("alternating batches (301 rounds in benches/paired.rs and for S10 and S13, 60 fan-outs for S4w in")
print("latency.rs), 10th–90th percentile in brackets; where a row has it, it decides the verdict.")
print()
print("| id | scenario | ours | tokio-util | floor | Go | ratio | paired | target | verdict |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")

def opline(id_, label):
    parts = []
    for who in ("ours", "tokio_util", "tokio_util_task"):
        m = mem.get((id_, who))
        if m:
            parts.append(f"{who} {m['bytes']:.0f} B in {m['allocs']:.2g} allocs")
    gov = go.get(id_.split("_")[0])
    if gov and "allocs/op" in gov:
        parts.append(f"Go {gov['B/op']:.0f} B in {gov['allocs/op']:.2g} allocs")
    if parts:
        print(f"- {label}: " + "; ".join(parts) + ".")

p = paired.get("S10 floor")
if p:
    print()
    print(f"S10's structural floor (paired, no target): `tokio::spawn` plus the context work of a `go!` "
          f"(a child context, its handle and clones, dropped in `go!`'s order) and no glue costs "
          f"{p['ratio']:.2f}× ({p['p10']:.2f}–{p['p90']:.2f}) `tokio::spawn` alone.")
p = paired.get("S1 through a pointer")
if p:
    print()
    print(f"S1's structural floor (paired, no target): the floor's flag read through one more pointer, "
          f"as a context's state is, costs {p['ratio']:.2f}× ({p['p10']:.2f}–{p['p90']:.2f}) the floor.")
# The S13 variants printed under the table, each as one sentence with its paired latency and
# throughput (the ratio of times per batch, inverted: requests per second).
for name, text in [
    ("ambient", "S13 with the call's context current (paired, a handler's outgoing call: `ctx.scope(..)` instead of "
                "a request extension set on the client's request) costs {lat} and gives {thr}."),
    ("header_only", "S13's structural floor (paired, no target): the deadline header alone, written by hand on the "
                    "bare service (HPACK both ways, the first entry of both header maps) and no layer, costs "
                    "{lat} and gives {thr}."),
    ("axum", "S13 on an axum service (paired, HTTP/2: a `Router` with the one route, bare and with "
             "`.layer(ContextLayer::http())`): the layers cost {lat} and give {thr}."),
]:
    p, q = paired.get(f"S13 latency {name}"), paired.get(f"S13 throughput {name}")
    if p and q:
        # Not `lat`: that name holds the latency rows read above, used below.
        lat_txt = f"{p['ratio']:.2f}× ({p['p10']:.2f}–{p['p90']:.2f}) bare latency"
        thr_txt = f"{1 / q['ratio']:.2f}× ({1 / q['p90']:.2f}–{1 / q['p10']:.2f}) bare throughput"
        print()
        print(text.format(lat=lat_txt, thr=thr_txt))
p, q = paired.get("S13 grpc latency"), paired.get("S13 grpc throughput")
tp, tq = paired.get("S13 grpc latency tonic"), paired.get("S13 grpc throughput tonic")
vp, vq = paired.get("S13 grpc latency ours_vs_tonic"), paired.get("S13 grpc throughput ours_vs_tonic")
if p and q and tp and tq and vp and vq:
    def lt(p, q):
        return (f"{p['ratio']:.2f}× ({p['p10']:.2f}–{p['p90']:.2f}) latency and "
                f"{1 / q['ratio']:.2f}× ({1 / q['p90']:.2f}–{1 / q['p10']:.2f}) throughput")
    print()
    print(f"S13 against the peer (paired, a unary gRPC call on tonic's own `Server` and a `Channel`): "
          f"tonic's own deadline (`set_timeout`) costs {lt(tp, tq)} of no deadline; ours "
          f"(`Server::builder().layer(ContextLayer::grpc())`, `PropagateLayer::grpc()` over the `Channel`) "
          f"{lt(p, q)}, which is {lt(vp, vq)} of tonic's own.")
p, q = paired.get("S13 http1 latency"), paired.get("S13 http1 throughput")
if p and q:
    hp, hq = paired.get("S13 http1 latency header_only"), paired.get("S13 http1 throughput header_only")
    def against(ok):
        return "within" if ok else "outside"
    print()
    print(f"S13 over HTTP/1.1 (paired, the same service and layers; one connection for latency, 32 "
          f"connections with one request each for throughput): the layers cost {p['ratio']:.2f}× "
          f"({p['p10']:.2f}–{p['p90']:.2f}) bare latency ({against(p['ratio'] <= 1.05 + 1e-9)} S13's 1.05×) and give "
          f"{1 / q['ratio']:.2f}× ({1 / q['p90']:.2f}–{1 / q['p10']:.2f}) bare throughput "
          f"({against(1 / q['ratio'] >= 0.95 - 1e-9)} its 0.95×)"
          + ("" if not (hp and hq) else
             f"; the header alone {hp['ratio']:.2f}× latency, {1 / hq['ratio']:.2f}× throughput")
          + ".")
print()
print("Allocations per operation (bytes requested):")
opline("S2_op", "S2 (target: 1 alloc)")
opline("S3_op", "S3")
for who in ("ours", "tokio_util"):
    m = lat.get(("S6", who))
    if m:
        print(f"- S6 {who}: p50 {m['p50']:.0f} ns, p90 {m['p90']:.0f} ns, p99 {m['p99']:.0f} ns ({m['n']:.0f} samples).")
for who in ("ours", "tokio_util"):
    m = lat.get(("S6x", who))
    if m:
        print(f"- S6x (no target; cancel from another thread, task on an idle worker) {who}: p50 {m['p50']:.0f} ns, p90 {m['p90']:.0f} ns, p99 {m['p99']:.0f} ns.")
for who in ("ours", "floor"):
    m = lat.get(("S6t", who))
    if m:
        print(f"- S6t {who}: p50 {m['p50']:.0f} ns, p90 {m['p90']:.0f} ns, p99 {m['p99']:.0f} ns ({m['n']:.0f} samples).")
for id_ in ("S5m", "S11"):
    for who in ("ours", "tokio_util"):
        m = deep.get((id_, who))
        if m:
            print(f"- {id_} {who}: create {m['create_ms']:.0f} ms, cancel {m['cancel_ms']:.0f} ms, drop {m['drop_ms']:.0f} ms.")
PY
