#!/usr/bin/env python3
"""A/B driver for chatroom's benchmark scenarios: the chatserver of two trees
side by side, interleaved pair by pair, one loadgen binary for both.

Called by run.sh (which builds the binaries); usable alone:

  driver.py --out DIR --loadgen BIN \
      --before-server BIN --after-server BIN \
      [--before-unpaced BIN --after-unpaced BIN] [--rounds N] [--scenarios a,b,...]

Every scenario's arguments are those of benchmarks/cmd/compare (full size);
a pair runs before and after back to back, the order alternating from pair
to pair (ABBA...) so that neither tree always goes first. Every process is
on 127.0.0.1 and bounded by a timeout.
"""

import argparse
import json
import math
import os
import resource
import select
import signal
import statistics
import subprocess
import sys
import time

FANOUT = ["-members", "1000", "-senders", "1", "-messages", "2000", "-window", "16", "-duration", "60s"]
CROSS = ["-members", "200", "-senders", "20", "-rate", "50", "-messages", "250", "-duration", "20s"]

# name -> (server kind, chatserver args, loadgen args, loadgen timeout s, what it is)
SCENARIOS = {
    "fanout": ("chatserver", ["-impl", "chatroom"], FANOUT, 150,
               "compare's fanout: 1 node, 1000 members, 1 sender x 2000 msgs, window 16 (paced by WithPacing's default)"),
    "fanout-unpaced": ("unpaced", [], FANOUT, 150,
                       "the same load, 1 node with WithPacing off (server built out of tree): the delivery path itself"),
    "fanout-x-memory": ("chatserver", ["-impl", "chatroom", "-nodes", "2", "-broker", "memory"], FANOUT + ["-senders-first"], 150,
                        "fan-out across 2 nodes, memory broker (BENCHMARKS.md's by-hand cross-node fan-out)"),
    "fanout-x-nats": ("chatserver", ["-impl", "chatroom", "-nodes", "2", "-broker", "nats"], FANOUT + ["-senders-first"], 150,
                      "fan-out across 2 nodes, core NATS (embedded)"),
    "fanout-x-redis": ("chatserver", ["-impl", "chatroom", "-nodes", "2", "-broker", "redis"], FANOUT + ["-senders-first"], 150,
                       "fan-out across 2 nodes, Redis"),
    "crossnode-none": ("chatserver", ["-impl", "chatroom"], CROSS + ["-senders-first"], 90,
                       "compare's crossnode, 1 node: 200 members, 20 senders x 50 msg/s x 250"),
    "crossnode-memory": ("chatserver", ["-impl", "chatroom", "-nodes", "2", "-broker", "memory"], CROSS + ["-senders-first"], 90,
                         "compare's crossnode, 2 nodes, memory broker"),
    "crossnode-nats": ("chatserver", ["-impl", "chatroom", "-nodes", "2", "-broker", "nats"], CROSS + ["-senders-first"], 90,
                       "compare's crossnode, 2 nodes, core NATS"),
    "crossnode-jetstream": ("chatserver", ["-impl", "chatroom", "-nodes", "2", "-broker", "jetstream"], CROSS + ["-senders-first"], 90,
                            "compare's crossnode, 2 nodes, JetStream"),
    "crossnode-redis": ("chatserver", ["-impl", "chatroom", "-nodes", "2", "-broker", "redis"], CROSS + ["-senders-first"], 90,
                        "compare's crossnode, 2 nodes, Redis"),
    # Both trees' chatserver and the loadgen need -memstats (benchmarks
    # from the connections scenario on).
    "connections-5000": ("chatserver", ["-impl", "chatroom", "-memstats"], ["-conns", "5000", "-memstats"], 120,
                         "compare's connections at 5,000: idle connections, RSS and heap per connection, one message to all"),
    "connections-19000": ("chatserver", ["-impl", "chatroom", "-memstats"], ["-conns", "19000", "-memstats"], 300,
                          "compare's connections at 19,000 (the most one process holds under RLIMIT_NOFILE 20,000)"),
}
# Not by default: they need -memstats on both sides.
DEFAULT = [s for s in SCENARIOS if not s.startswith("connections")]

# Figures kept per run: key -> (label, which direction is better)
FIGS = [
    ("dps", "deliveries/s", "higher"),
    ("p50", "p50 ms", "lower"),
    ("p99", "p99 ms", "lower"),
    ("xp99", "cross-node p99 ms", "lower"),
    ("cpu_us", "server+broker CPU us/delivery", "lower"),
    # loadgen -conns only:
    ("rss", "RSS KiB/conn", "lower"),
    ("heap", "Go heap live + stacks KiB/conn", "lower"),
    ("toall", "one message to all ms (median of 3)", "lower"),
]


TICK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1


def busy_seconds():
    """CPU seconds every processor has been busy since boot (idle and iowait excluded)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest is inside user)
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / TICK


def proc_cpu(pid):
    """utime+stime of a process and its reaped children, or None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            f = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return sum(int(x) for x in f[11:15]) / TICK


def other_cores(seconds):
    """Cores' worth of CPU used by everything on the machine over a short window."""
    b0, t0 = busy_seconds(), time.monotonic()
    time.sleep(seconds)
    return (busy_seconds() - b0) / (time.monotonic() - t0)


def wait_quiet(cores, limit):
    """Waits up to limit seconds until the machine's other work is below
    cores; returns that work's last reading if it had to wait, else None."""
    deadline = time.monotonic() + limit
    fc = other_cores(1.0)
    if fc < cores:
        return None
    while time.monotonic() < deadline:
        fc = other_cores(1.0)
        if fc < cores:
            break
    return fc


def log(msg, fh=None):
    line = time.strftime("%H:%M:%S ") + msg
    print(line, flush=True)
    if fh:
        fh.write(line + "\n")
        fh.flush()


class Server:
    def __init__(self, argv, errpath):
        self.err = open(errpath, "ab")
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                  start_new_session=True)
        self.addrs, self.broker_pid = None, 0
        deadline = time.monotonic() + 10
        buf = b""
        while self.addrs is None:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise RuntimeError("server did not report its address within 10s")
            r, _, _ = select.select([self.p.stdout], [], [], left)
            if not r:
                continue
            chunk = os.read(self.p.stdout.fileno(), 4096)
            if not chunk:
                self.stop()
                raise RuntimeError("server exited before listening (rc %s)" % self.p.poll())
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                line = line.decode().strip()
                if line.startswith("broker-pid "):
                    self.broker_pid = int(line.split()[1])
                elif line.startswith("listening "):
                    self.addrs = line.split()[1].split(",")

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        # As compare does: stdin closed, then SIGTERM, then SIGKILL.
        try:
            self.p.stdin.close()
        except OSError:
            pass
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None and self.p.poll() is None:
                self.p.send_signal(sig)
            try:
                self.p.wait(timeout=3)
                break
            except subprocess.TimeoutExpired:
                continue
        self.p.stdout.close()
        self.err.close()


def run_one(binary, kind, sargs, largs, timeout, loadgen, outdir, tag):
    """Runs one scenario against one server; returns a record."""
    # The 1-minute load average when the run starts: other work on this
    # shared machine shows here.
    rec = {"tag": tag, "ok": False, "load1": os.getloadavg()[0]}
    argv = [binary] + (sargs + ["-addr", "127.0.0.1:0"] if kind == "chatserver" else [])
    t0 = time.monotonic()
    try:
        srv = Server(argv, os.path.join(outdir, tag + ".server.log"))
    except Exception as e:  # noqa: BLE001 - reported, the run goes on
        rec["error"] = "start: %s" % e
        return rec
    try:
        urls = ",".join("ws://%s/chat" % a for a in srv.addrs)
        cmd = [loadgen, "-url", urls, "-json"] + largs + ["-server-pid", str(srv.p.pid)]
        if srv.broker_pid:
            cmd += ["-broker-pid", str(srv.broker_pid)]
        ours0 = [proc_cpu(srv.p.pid) or 0, proc_cpu(srv.broker_pid) or 0 if srv.broker_pid else 0]
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        b0, w0 = busy_seconds(), time.monotonic()
        lg = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            lout, lerr = lg.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            lg.kill()
            lg.communicate()
            rec["error"] = "loadgen timed out after %ds" % timeout
            return rec
        b1, w1 = busy_seconds(), time.monotonic()
        ours1 = [proc_cpu(srv.p.pid), proc_cpu(srv.broker_pid) if srv.broker_pid else 0]
        # Only loadgen was reaped in between: the server still runs.
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        lg_cpu = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
        if None not in ours1:
            mine = (ours1[0] - ours0[0]) + (ours1[1] - ours0[1]) + lg_cpu
            # Other work on the machine while loadgen ran, in cores (this
            # driver's own few polls included): the contention indicator.
            rec["other_cores"] = round(max(0.0, (b1 - b0) - mine) / (w1 - w0), 3)
        cp = subprocess.CompletedProcess(cmd, lg.returncode, lout, lerr)
        with open(os.path.join(outdir, tag + ".json"), "wb") as f:
            f.write(cp.stdout)
        if cp.stderr:
            with open(os.path.join(outdir, tag + ".loadgen.log"), "wb") as f:
                f.write(cp.stderr)
        try:
            res = json.loads(cp.stdout)
        except ValueError:
            rec["error"] = "loadgen rc %d: %s" % (cp.returncode, cp.stderr.decode(errors="replace").strip()[-300:])
            return rec
        if not srv.alive():
            rec["error"] = "server exited during the run"
        elif res.get("error"):
            rec["error"] = res["error"]
        else:
            rec["ok"] = True
        recv = res.get("received") or 0
        cpu = (res.get("server_cpu_seconds") or 0) + (res.get("broker_cpu_seconds") or 0)
        rec.update({
            "dps": res.get("deliveries_per_sec"),
            "p50": res["latency"]["p50_ms"], "p99": res["latency"]["p99_ms"],
            "xp99": (res.get("cross_node") or {}).get("latency", {}).get("p99_ms"),
            "cpu_us": cpu / recv * 1e6 if recv else None,
            "server_cpu": res.get("server_cpu_seconds"), "broker_cpu": res.get("broker_cpu_seconds"),
            "loadgen_cpu": res.get("loadgen_cpu_seconds"),
            "elapsed": res.get("elapsed_seconds"),
            "received": recv, "expected": res.get("expected"), "lost": res.get("lost"),
            "dup": res.get("duplicates"), "reord": res.get("reordered"), "dropped": res.get("dropped"),
            "timed_out": res.get("timed_out"),
        })
        conns = res.get("conns")
        if conns:
            rec.update({
                "rss": res.get("rss_per_conn_kib"),
                "heap": (conns.get("heap_live_per_conn_kib") or 0) + (conns.get("stack_per_conn_kib") or 0),
                "toall": statistics.median(conns["delivery_ms"]) if conns.get("delivery_ms") else None,
            })
        if rec["ok"] and (res.get("lost") or res.get("duplicates") or res.get("reordered")):
            rec["note"] = "lost %s dup %s reordered %s" % (res.get("lost"), res.get("duplicates"), res.get("reordered"))
        return rec
    finally:
        srv.stop()
        rec["wall"] = round(time.monotonic() - t0, 2)


def fmt(v, key):
    if v is None:
        return "-"
    if key == "dps":
        return "{:,.0f}".format(v)
    return "%.2f" % v


def median_ci(xs):
    """The median of xs and a distribution-free interval for it (order
    statistics, binomial), at least 95% where n allows (n >= 6), or the
    range for fewer."""
    xs = sorted(xs)
    n = len(xs)
    med = statistics.median(xs)
    # largest k with P(Bin(n, 1/2) <= k-1) <= 0.025
    k, cum = 0, 0.0
    for j in range(n):
        cum += math.comb(n, j) / 2 ** n
        if cum > 0.025:
            break
        k = j + 1
    if k == 0:
        return med, xs[0], xs[-1], None  # too few pairs for an interval: the range
    cover = 1 - 2 * sum(math.comb(n, j) for j in range(k)) / 2 ** n
    return med, xs[k - 1], xs[n - k], cover


def summarize(recs, scens, out, quiet=None):
    """Writes the table of all pairs; with quiet, a second one of the pairs
    in which both runs had less than that many cores of other work."""
    text = table(recs, scens, None)
    if quiet is not None:
        text += "\n## Quiet pairs only (other work < %.2f cores in both runs)\n\n" % quiet + table(recs, scens, quiet)
    with open(os.path.join(out, "summary.md"), "a") as f:
        f.write(text)
    print(text)


def table(recs, scens, quiet):
    lines = []
    w = lines.append
    oc = [r["other_cores"] for r in recs if r.get("other_cores") is not None]
    if oc and quiet is None:
        w("Other work on the machine while loadgen ran (cores of %d): median %.2f, max %.2f; "
          "load average at run starts: median %.1f" % (NCPU, statistics.median(oc), max(oc),
                                                        statistics.median(r["load1"] for r in recs)))
        w("")
    w("Ratio = after/before, pair by pair (each pair ran back to back); the estimate is the median of "
      "the pair ratios, with a distribution-free interval for it.")
    w("")
    w("| scenario | figure | before median | after median | pair ratio median | interval (coverage) | pair ratios min - max | n | verdict |")
    w("|---|---|---:|---:|---:|---|---|---:|---|")
    verdicts = []
    for s in scens:
        pairs = {}
        for r in recs:
            if r["scenario"] == s and r["ok"]:
                pairs.setdefault(r["round"], {})[r["side"]] = r
        full = [p for _, p in sorted(pairs.items()) if "before" in p and "after" in p]
        if quiet is not None:
            full = [p for p in full if all((p[x].get("other_cores") is not None and p[x]["other_cores"] < quiet)
                                           for x in ("before", "after"))]
        if not full:
            w("| %s | (no complete pair) | | | | | | 0 | |" % s)
            continue
        for key, label, better in FIGS:
            b = [p["before"][key] for p in full if p["before"].get(key) is not None]
            a = [p["after"][key] for p in full if p["after"].get(key) is not None]
            pr = [p["after"][key] / p["before"][key] for p in full
                  if p["before"].get(key) and p["after"].get(key) is not None]
            if not b or not a or not pr:
                continue
            med, lo, hi, cover = median_ci(pr)
            v = ""
            if key in ("dps", "p99", "cpu_us") and cover is None:
                v = "too few pairs (n<6)"
            elif key in ("dps", "p99", "cpu_us"):
                bad = lo if better == "higher" else hi       # the interval's worse end
                good = hi if better == "higher" else lo
                sign = 1 if better == "higher" else -1
                if sign * (bad - 1) >= -0.05:
                    v = "ok: not >5% worse"
                elif sign * (good - 1) < -0.05:
                    v = "WORSE by >5%"
                else:
                    v = "undecided (noise)"
            if v:
                verdicts.append((s, label, v, med, lo, hi))
            iv = "%.3f - %.3f (%.0f%%)" % (lo, hi, cover * 100) if cover else "-"
            w("| %s | %s | %s | %s | %.3f | %s | %.3f - %.3f | %d | %s |" % (
                s, label, fmt(statistics.median(b), key), fmt(statistics.median(a), key),
                med, iv, min(pr), max(pr), len(pr), v))
    w("")
    w("Verdicts (deliveries/s, p99, CPU/delivery): 'ok' when the interval's worse end is within 5% (no regression beyond 5% at ~95% confidence); "
      "'WORSE' when even its better end is beyond 5%; else the noise is too large to tell.")
    for v in ("WORSE by >5%", "undecided (noise)", "ok: not >5% worse", "too few pairs (n<6)"):
        names = ["%s %s (%.3f)" % (s, l, m) for s, l, vv, m, _, _ in verdicts if vv == v]
        if names:
            w("- %s: %s" % (v, "; ".join(names)))
    fails = [r for r in recs if not r["ok"]]
    notes = [r for r in recs if r.get("note")]
    if fails:
        w("")
        w("Failed runs:")
        for r in fails:
            w("- %s: %s" % (r["tag"], r.get("error")))
    if notes:
        w("")
        w("Runs with loss, duplicates or reordering:")
        for r in notes:
            w("- %s: %s" % (r["tag"], r["note"]))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--before-server", required=True)
    ap.add_argument("--after-server", required=True)
    ap.add_argument("--before-unpaced")
    ap.add_argument("--after-unpaced")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--scenarios", default=",".join(DEFAULT))
    ap.add_argument("--max-minutes", type=float, default=20, help="no new round starts after this")
    ap.add_argument("--quiet-wait", type=float, default=0,
                    help="before each pair, wait up to this many seconds for the machine's other work to drop below --quiet-cores")
    ap.add_argument("--quiet-cores", type=float, default=0.3)
    ap.add_argument("--summarize-only", action="store_true", help="re-read DIR/runs.jsonl and print the summary")
    a = ap.parse_args()
    scens = [s.strip() for s in a.scenarios.split(",") if s.strip()]
    for s in scens:
        if s not in SCENARIOS:
            sys.exit("unknown scenario %r (have %s)" % (s, ", ".join(SCENARIOS)))
    os.makedirs(a.out, exist_ok=True)
    jl = os.path.join(a.out, "runs.jsonl")
    if a.summarize_only:
        summarize([json.loads(l) for l in open(jl)], scens, a.out, a.quiet_cores)
        return
    if "fanout-unpaced" in scens and not (a.before_unpaced and a.after_unpaced):
        print("fanout-unpaced: no unpaced server for both trees; skipped", flush=True)
        scens.remove("fanout-unpaced")
    bins = {
        "before": {"chatserver": a.before_server, "unpaced": a.before_unpaced},
        "after": {"chatserver": a.after_server, "unpaced": a.after_unpaced},
    }
    progress = open(os.path.join(a.out, "progress.log"), "a")
    t0 = time.monotonic()
    recs = []
    # One warm-up pair, not counted: page cache, CPU frequency, first dials.
    for side in ("before", "after"):
        kind, sargs, largs, to, _ = SCENARIOS["fanout"]
        r = run_one(bins[side]["chatserver"], kind, sargs, largs, to, a.loadgen, a.out, "warmup-" + side)
        log("warm-up %-6s %s" % (side, "ok" if r["ok"] else r.get("error")), progress)
    with open(jl, "a") as out:
        for rnd in range(1, a.rounds + 1):
            if (time.monotonic() - t0) / 60 > a.max_minutes:
                log("stopping before round %d: past --max-minutes %.0f" % (rnd, a.max_minutes), progress)
                break
            for i, s in enumerate(scens):
                kind, sargs, largs, to, _ = SCENARIOS[s]
                # Each scenario's order flips from round to round, whatever
                # the number of scenarios, and neighbours differ in a round.
                order = ("before", "after") if (rnd + i) % 2 else ("after", "before")
                if a.quiet_wait > 0:
                    fc = wait_quiet(a.quiet_cores, a.quiet_wait)
                    if fc is not None:
                        log("waited for a quieter machine: other work %.2f cores" % fc, progress)
                for side in order:
                    tag = "r%02d-%s-%s" % (rnd, s, side)
                    r = run_one(bins[side][kind], kind, sargs, largs, to, a.loadgen, a.out, tag)
                    r.update({"round": rnd, "scenario": s, "side": side})
                    recs.append(r)
                    out.write(json.dumps(r) + "\n")
                    out.flush()
                    if r["ok"] and r.get("rss") is not None:
                        log("%-34s RSS %6.2f KiB/conn heap+stacks %5.2f to all %s ms other %.2f cores (%.1fs)" % (
                            tag, r["rss"], r["heap"], fmt(r["toall"], "toall"), r.get("other_cores") or 0, r["wall"]), progress)
                    elif r["ok"]:
                        log("%-34s %14s/s p50 %6.2f p99 %7.2f cpu %.2fus other %.2f cores%s (%.1fs)" % (
                            tag, fmt(r["dps"], "dps"), r["p50"], r["p99"], r["cpu_us"] or 0,
                            r.get("other_cores") or 0, " " + r["note"] if r.get("note") else "", r["wall"]), progress)
                    else:
                        log("%-34s FAILED: %s" % (tag, r.get("error")), progress)
    log("done in %.1f min" % ((time.monotonic() - t0) / 60), progress)
    summarize(recs, scens, a.out, a.quiet_cores)


if __name__ == "__main__":
    main()
