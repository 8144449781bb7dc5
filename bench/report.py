#!/usr/bin/env python3
"""Turns what bench/run.sh collected into a markdown report.

Usage: report.py SAMPLES.tsv META.txt OUT.md

SAMPLES.tsv has one line per (run, target), tab-separated:
    run  target  wrk_output_file  hey_output_file  proxy_cpu_ticks  backend_cpu_ticks  proxy_peak_rss_kb
The ticks are utime+stime deltas over the fixed-rate (hey) run. META.txt holds key=value lines
(machine info, versions, parameters). With several runs every number is the median over runs, and
ratios are taken between medians.
"""
import re
import statistics
import sys

TARGETS = [
    ("direct", "direct (client → backend)"),
    ("bowline", "bowline sidecar (explicit proxy)"),
    ("nginx", "nginx, 1 worker"),
    ("haproxy", "haproxy, 1 thread"),
]

MTLS_TARGETS = [
    ("direct", "direct (client → backend)"),
    ("bowline", "bowline: client sidecar → server sidecar"),
    ("nginx", "nginx → nginx, 1 worker each"),
    ("haproxy", "haproxy → haproxy, 1 thread each"),
]


def parse_wrk(path):
    text = open(path, encoding="utf-8", errors="replace").read()
    out = {"rps": None, "requests": None, "non2xx": 0, "socket_errors": 0, "avg_latency_ms": None}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", text):
        out["rps"] = float(m.group(1))
    if m := re.search(r"(\d+) requests in", text):
        out["requests"] = int(m.group(1))
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text):
        out["non2xx"] = int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        out["socket_errors"] = sum(int(g) for g in m.groups())
    if m := re.search(r"Latency\s+([\d.]+)(us|ms|s)\b", text):
        value, unit = float(m.group(1)), m.group(2)
        out["avg_latency_ms"] = value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return out


def parse_hey(path):
    text = open(path, encoding="utf-8", errors="replace").read()
    out = {"rps": None, "p50": None, "p90": None, "p99": None, "codes": {}, "errors": 0, "error_lines": []}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", text):
        out["rps"] = float(m.group(1))
    for pct, secs in re.findall(r"^\s*(\d+)%+ in ([\d.]+) secs", text, re.M):
        if pct in ("50", "90", "99"):
            out["p" + pct] = float(secs) * 1000.0
    codes_section = text.split("Status code distribution:", 1)[1] if "Status code distribution:" in text else ""
    codes_section = codes_section.split("Error distribution:", 1)[0]
    for code, count in re.findall(r"\[(\d+)\]\s+(\d+) responses", codes_section):
        out["codes"][int(code)] = out["codes"].get(int(code), 0) + int(count)
    if "Error distribution:" in text:
        for line in text.split("Error distribution:", 1)[1].splitlines():
            if m := re.match(r"\s*\[(\d+)\]\s+(.*)", line):
                out["errors"] += int(m.group(1))
                out["error_lines"].append(line.strip())
    return out


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, digits=1, suffix=""):
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}{suffix}"


def ratio(a, b, digits=2):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.{digits}f}×"


def delta(a, b, digits=2):
    if a is None or b is None:
        return "n/a"
    return f"{a - b:+.{digits}f}"


def main():
    samples_path, meta_path, out_path = sys.argv[1:4]
    meta = {}
    for line in open(meta_path, encoding="utf-8"):
        if "=" in line:
            key, value = line.rstrip("\n").split("=", 1)
            meta[key] = value
    hz = float(meta.get("clk_tck", "100"))

    rows = []  # one per (run, target)
    for line in open(samples_path, encoding="utf-8"):
        parts = line.rstrip("\n").split("\t")
        if len(parts) < 7:
            continue
        run, target, wrk_file, hey_file, proxy_ticks, backend_ticks, rss_kb = parts[:7]
        # Columns 8-12 (newer run.sh): CPU ticks of proxy A and B, peak RSS KB of A and B, B's TLS handshakes.
        extra = parts[7:12] + [""] * (5 - len(parts[7:12]))
        a_ticks, b_ticks, rss_a_kb, rss_b_kb, handshakes = extra
        wrk = parse_wrk(wrk_file)
        hey = parse_hey(hey_file)
        completed = sum(hey["codes"].values())
        per_k = completed / 1000.0 if completed else None
        proxy_ms = int(proxy_ticks) * 1000.0 / hz
        backend_ms = int(backend_ticks) * 1000.0 / hz
        rows.append({
            "run": int(run),
            "target": target,
            "wrk": wrk,
            "hey": hey,
            "completed": completed,
            "cpu_per_k": proxy_ms / per_k if per_k else None,
            "backend_cpu_per_k": backend_ms / per_k if per_k else None,
            "rss_mb": int(rss_kb) / 1024.0 if rss_kb.isdigit() else None,
            "cpu_a_per_k": int(a_ticks) * 1000.0 / hz / per_k if per_k and a_ticks.isdigit() else None,
            "cpu_b_per_k": int(b_ticks) * 1000.0 / hz / per_k if per_k and b_ticks.isdigit() else None,
            "rss_a_mb": int(rss_a_kb) / 1024.0 if rss_a_kb.isdigit() else None,
            "rss_b_mb": int(rss_b_kb) / 1024.0 if rss_b_kb.isdigit() else None,
            "handshakes": int(handshakes) if handshakes.isdigit() else None,
        })

    runs = sorted({r["run"] for r in rows})
    agg = {}
    for key, _ in TARGETS:
        mine = [r for r in rows if r["target"] == key]
        if not mine:
            continue
        agg[key] = {
            "rps": median([r["wrk"]["rps"] for r in mine]),
            "wrk_avg_ms": median([r["wrk"]["avg_latency_ms"] for r in mine]),
            "p50": median([r["hey"]["p50"] for r in mine]),
            "p90": median([r["hey"]["p90"] for r in mine]),
            "p99": median([r["hey"]["p99"] for r in mine]),
            "fixed_rps": median([r["hey"]["rps"] for r in mine]),
            "cpu": median([r["cpu_per_k"] for r in mine]),
            "backend_cpu": median([r["backend_cpu_per_k"] for r in mine]),
            # VmHWM only grows, so the last reading is the peak over the whole benchmark.
            "rss": max((r["rss_mb"] for r in mine if r["rss_mb"] is not None), default=None),
            "cpu_a": median([r["cpu_a_per_k"] for r in mine]),
            "cpu_b": median([r["cpu_b_per_k"] for r in mine]),
            "rss_a": max((r["rss_a_mb"] for r in mine if r["rss_a_mb"] is not None), default=None),
            "rss_b": max((r["rss_b_mb"] for r in mine if r["rss_b_mb"] is not None), default=None),
            "handshakes": sum(r["handshakes"] for r in mine) if any(r["handshakes"] is not None for r in mine) else None,
        }

    d = agg.get("direct", {})
    n = agg.get("nginx", {})
    many = len(runs) > 1
    stat = f"median of {len(runs)} runs" if many else "1 run"

    L = []
    mtls = meta.get("topology") == "mtls"
    if mtls:
        L.append(f"# Bowline two-sidecar mTLS benchmark — {meta.get('date_utc', '')}")
        L.append("")
        L.append(f"client → proxy A → (TLS 1.3, mutual, verified) → proxy B → backend; 1 KB HTTP/1.1 responses from "
                 f"one nginx backend; {stat}. Same machine, same backend, same clients for every target; direct is "
                 "client → backend with no proxy.")
    else:
        L.append(f"# Bowline one-hop benchmark — {meta.get('date_utc', '')}")
        L.append("")
        L.append(f"1 KB HTTP/1.1 responses from one nginx backend; {stat}. "
                 "Same machine, same backend, same clients for every target.")
    L.append("")
    try:
        busiest = max(float(meta.get(k, "0").split()[0]) for k in ("load_before", "load_after"))
    except (ValueError, IndexError):
        busiest = 0.0
    cores = int(meta.get("nproc", "0") or 0)
    if cores and busiest > cores:
        L.append(f"> **Busy machine:** the 1-minute load average reached {busiest:.1f} on {cores} cores, so other "
                 "processes competed with this benchmark. Treat the numbers as rough; prefer `RUNS=3` or more "
                 "and compare ratios, not absolutes.")
        L.append("")
    if mtls:
        L.append("## Relative to direct (the pair A + B)")
        L.append("")
        L.append("| target | throughput / direct | added p50 ms | added p90 ms | added p99 ms | CPU-ms / 1k req, A + B | "
                 "A (client side) | B (server side) | peak RSS MB, A | peak RSS MB, B | TLS handshakes at B |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for key, label in MTLS_TARGETS:
            if key not in agg or key == "direct":
                continue
            a = agg[key]
            hs = "n/a" if a["handshakes"] is None else str(a["handshakes"])
            L.append(f"| {label} | {ratio(a['rps'], d.get('rps'))} | {delta(a['p50'], d.get('p50'))} | "
                     f"{delta(a['p90'], d.get('p90'))} | {delta(a['p99'], d.get('p99'))} | {fmt(a['cpu'], 1)} | "
                     f"{fmt(a['cpu_a'], 1)} | {fmt(a['cpu_b'], 1)} | {fmt(a['rss_a'], 1)} | {fmt(a['rss_b'], 1)} | {hs} |")
        L.append("")
        L.append("Istio's published figures for comparison (its own benchmark, other hardware and load, not measured "
                 "here): a sidecar pair with mTLS adds **+0.228 ms p90 / +0.298 ms p99**, and each sidecar uses "
                 "**0.20 vCPU and 60 MB at 1,000 rps** — 0.20 vCPU at 1,000 rps is 200 CPU-ms per 1,000 requests "
                 "per sidecar, 400 for the pair.")
        L.append("")
        L.append("## Absolute numbers")
        L.append("")
        L.append("| target | saturation rps (wrk -c32) | p50 ms | p90 ms | p99 ms | achieved rps at fixed rate | "
                 "backend CPU-ms / 1k req |")
        L.append("|---|---:|---:|---:|---:|---:|---:|")
        for key, label in MTLS_TARGETS:
            if key not in agg:
                continue
            a = agg[key]
            L.append(f"| {label} | {fmt(a['rps'], 0)} | {fmt(a['p50'], 2)} | {fmt(a['p90'], 2)} | {fmt(a['p99'], 2)} | "
                     f"{fmt(a['fixed_rps'], 0)} | {fmt(a['backend_cpu'], 1)} |")
        L.append("")
        L.append("For direct, the CPU and RSS columns above would be the backend's own; it is in the last column.")
        L.append("")
    else:
        L.append("## Absolute numbers")
        L.append("")
        L.append("| target | saturation rps (wrk -c32) | p50 ms | p90 ms | p99 ms | achieved rps at fixed rate | "
                 "CPU-ms / 1k req | peak RSS MB | backend CPU-ms / 1k req |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for key, label in TARGETS:
            if key not in agg:
                continue
            a = agg[key]
            L.append(f"| {label} | {fmt(a['rps'], 0)} | {fmt(a['p50'], 2)} | {fmt(a['p90'], 2)} | {fmt(a['p99'], 2)} | "
                     f"{fmt(a['fixed_rps'], 0)} | {fmt(a['cpu'], 1)} | {fmt(a['rss'], 1)} | {fmt(a['backend_cpu'], 1)} |")
        L.append("")
        L.append("## Relative to direct and to nginx")
        L.append("")
        L.append("| target | throughput / direct | added p50 ms | added p90 ms | added p99 ms | CPU / direct | CPU / nginx | RSS / nginx |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for key, label in TARGETS:
            if key not in agg or key == "direct":
                continue
            a = agg[key]
            L.append(f"| {label} | {ratio(a['rps'], d.get('rps'))} | {delta(a['p50'], d.get('p50'))} | "
                     f"{delta(a['p90'], d.get('p90'))} | {delta(a['p99'], d.get('p99'))} | "
                     f"{ratio(a['cpu'], d.get('cpu'))} | {ratio(a['cpu'], n.get('cpu'))} | {ratio(a['rss'], n.get('rss'))} |")
        L.append("")

    if many:
        L.append("## Per run")
        L.append("")
        L.append("| run | target | saturation rps | p50 ms | p90 ms | p99 ms | CPU-ms / 1k req |")
        L.append("|---:|---|---:|---:|---:|---:|---:|")
        for r in sorted(rows, key=lambda r: (r["run"], [k for k, _ in TARGETS].index(r["target"]))):
            L.append(f"| {r['run']} | {r['target']} | {fmt(r['wrk']['rps'], 0)} | {fmt(r['hey']['p50'], 2)} | "
                     f"{fmt(r['hey']['p90'], 2)} | {fmt(r['hey']['p99'], 2)} | {fmt(r['cpu_per_k'], 1)} |")
        L.append("")

    L.append("## Response health")
    L.append("")
    problems = []
    L.append("| run | target | wrk requests | wrk non-2xx/3xx | wrk socket errors | hey status codes | hey errors |")
    L.append("|---:|---|---:|---:|---:|---|---:|")
    for r in sorted(rows, key=lambda r: (r["run"], [k for k, _ in TARGETS].index(r["target"]))):
        codes = ", ".join(f"[{c}] {k}" for c, k in sorted(r["hey"]["codes"].items())) or "none"
        L.append(f"| {r['run']} | {r['target']} | {fmt(r['wrk']['requests'], 0)} | {r['wrk']['non2xx']} | "
                 f"{r['wrk']['socket_errors']} | {codes} | {r['hey']['errors']} |")
        if r["wrk"]["non2xx"] or r["wrk"]["socket_errors"] or r["wrk"]["rps"] is None:
            problems.append(f"run {r['run']} {r['target']}: wrk non-2xx {r['wrk']['non2xx']}, socket errors {r['wrk']['socket_errors']}")
        if set(r["hey"]["codes"]) - {200} or r["hey"]["errors"] or not r["hey"]["codes"]:
            problems.append(f"run {r['run']} {r['target']}: hey codes {codes}, errors {r['hey']['errors']} "
                            + "; ".join(r["hey"]["error_lines"][:3]))
    L.append("")
    if problems:
        L.append("**Problems:**")
        L.append("")
        L.extend(f"- {p}" for p in problems)
    else:
        L.append("All responses were 200; no socket errors.")
    L.append("")

    L.append("## How it was measured")
    L.append("")
    L.append(f"- Saturation: `wrk -t1 -c32 -d{meta.get('wrk_seconds')}s` after a {meta.get('warmup_seconds')} s wrk warm-up. "
             "**wrk, the proxy and the backend share the same cores**, so saturation rps measures the whole box, "
             "not the proxy alone; a proxy that burns more CPU also starves the client and the backend.")
    L.append(f"- Latency: fixed rate `hey -z {meta.get('hey_seconds')}s -q {meta.get('hey_qps')} -c {meta.get('hey_workers')}` "
             f"({meta.get('hey_rate')} rps), after a {meta.get('warmup_seconds')} s hey warm-up. hey prints latencies "
             "with 0.1 ms resolution, and its per-worker ticker skips ticks instead of queueing them, so the tail is "
             "somewhat optimistic under stalls.")
    L.append("- CPU: utime+stime from `/proc/<pid>/stat` before and after the fixed-rate run, in ms per 1,000 "
             "completed requests. bowline: the `bowline proxy` process (and any children); nginx: master + worker; "
             "haproxy: its single process; direct: the backend nginx (master + worker). The last column is the "
             "backend nginx's own CPU during the same run, for comparison.")
    L.append("- Peak RSS: `VmHWM` from `/proc/<pid>/status` at the end of the benchmark. bowline: the `bowline proxy` "
             "process; nginx: the worker only (the master is a few MB more, mostly shared); haproxy: its single "
             "process; direct: the backend nginx worker.")
    L.append(f"- Bowline: `{meta.get('bowline_bin')}` (JIT, Release, `dotnet build`), commit {meta.get('git_commit')}; "
             f"environment {meta.get('dotnet_env')}. Control plane with one Service and one WorkloadEntry; the client "
             "sends origin-form requests with `Host: backend` to the sidecar's outbound port.")
    L.append(f"- Target order within a run: {meta.get('order')}. Every server runs for the whole benchmark; only one "
             "is under load at a time.")
    if mtls:
        L.append("- mTLS topology: bowline: a control plane with its CA (`--ca-dir`), a PeerAuthentication STRICT, a "
                 "server sidecar (identity `backend`, WorkloadEntry with `security.istio.io/tlsMode: istio`) whose "
                 "inbound port fronts the backend, and a client sidecar (identity `bench-client`) whose outbound "
                 "port the load generator talks to; both get their SPIFFE certificates from the CA over the TLS xDS "
                 "port. Before measuring, the run checks that the server sidecar's inbound listener counted TLS "
                 "handshakes (`listener.*.ssl.handshake` ≥ 1) and refuses plaintext. nginx and haproxy: A verifies B "
                 "against a per-run test root and presents a client certificate; B requires and verifies it; TLS 1.3 "
                 "only, P-256 keys (openssl), keep-alive on both hops; the run checks B refuses a client without a "
                 "certificate. CPU is per proxy process (nginx master + worker, haproxy process, bowline proxy "
                 "process); the pair column is their sum over the same fixed-rate run. TLS handshakes at B: the "
                 "server sidecar's inbound `ssl.handshake` counter, during the fixed-rate runs of this target "
                 "(not read for nginx/haproxy).")
    L.append(f"- Mesh config scenario: {meta.get('scenario', 'default')} (`bench/conf/scenarios/<name>.yaml` added to the one Service).")
    if "telemetry" in meta:
        L.append(f"- Telemetry over the whole benchmark (client sidecar): {meta['telemetry']}")
    L.append("")
    L.append("## Machine")
    L.append("")
    for key, label in [
        ("date_utc", "date (UTC)"), ("host_cpu", "CPU"), ("nproc", "nproc"), ("kernel", "kernel"),
        ("load_before", "load average before"), ("load_after", "load average after"),
        ("nginx_version", "nginx"), ("haproxy_version", "haproxy"), ("wrk_version", "wrk"),
        ("hey_version", "hey"), ("dotnet_version", "dotnet SDK"), ("runtime_version", ".NET runtime"),
        ("elapsed", "measurement time"),
    ]:
        if key in meta:
            L.append(f"- {label}: {meta[key]}")
    L.append("")

    with open(out_path, "w", encoding="utf-8") as f:
        f.write("\n".join(L))
    print("\n".join(L))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
