#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""perf/report.py - perf/run's second half: check the parts' JSON lines,
take medians, write the results JSON, the markdown table and the plots.

  report.py --out-stem STEM --runs N --command CMD [--quick]
            PART:STATUS:FILE...

Every FILE holds the JSON lines one part printed (STATUS: its exit status).
A line is either a measurement
  {"bench":..,"param":..,"impl":..,"value":<number >= 0>,"unit":..,
   "run":<int >= 1>, ...more fields: numbers or strings}
or a note {"bench":..,"note":".."}.  Units ending in "/s" are better
higher (and must be > 0), every other unit lower.

Impls named proa* are proa; raw* are floors (the tightest hand-written
code on the bare kernel interface: raw liburing, raw eventfd), shown in a
"vs raw" column of their own and never taken as a peer; every other impl
is a peer.  A line may carry a "variant" (the raw_liburing echo server's
receive variants): each (bench, param) then shows the variant with the
best rate (or, without a rate, the lowest first cost), and the others are
listed under the table.  Writes STEM.json,
STEM.md and STEM-<bench>-<axis>.png (gnuplot; echo and http: throughput
and server CPU per operation against connections and against message
size), prints the markdown on stdout.  Exit status 0; 1 for a malformed
line; 3 if gnuplot is missing (everything else is still written).
"""
import argparse
import datetime
import json
import math
import os
import platform
import shutil
import socket
import subprocess
import sys

PART_TITLES = {
    "micro": "Loop micro benchmarks (proa-bench)",
    "echo": "TCP echo (perf/echo/run-echo)",
    "file": "File reads, 4 KiB random (perf/file/run-file)",
    "http": "HTTP static files (perf/http/run-http)",
}
PART_NOTES = {
    "micro": "proa: the loop on CPU 0, the other side on CPU 1 (pool: "
             "unpinned).  raw = the floor (raw liburing NOP loop, raw "
             "eventfd ping-pong).",
    "echo": "Server on CPU 1, echo-load on CPU 0.  Peers: epoll (hand-"
            "written), libuv, libevent.  Floor: raw_liburing (echo-uring, "
            "the best of its receive variants in each row, named in the "
            "cell; all of them below the table).  syscalls/msg from run 1 "
            "only (perf stat or strace, a separate traced run).",
    "file": "Everything on CPU 0, one job.  fio-psync is synchronous "
            "(depth 1): measured once per mode, shown on both QD rows.  "
            "cpu = user+system of the whole process per read.",
    "http": "Server on CPU 1, wrk -t1 on CPU 0, keep-alive.  nginx: "
            "master + 1 worker, access_log off, open_file_cache; nginx = "
            "sendfile + tcp_nopush (its docs' static-file advice), "
            "nginx-nopush = sendfile without tcp_nopush, nginx-nosendfile "
            "= sendfile off; the ratio is against the best of them.  cpu = "
            "server (all its processes) user+system per request.",
}


def higher_better(unit):
    return unit.endswith("/s")


def check_line(line):
    """The parsed object, or raise ValueError saying what is wrong."""
    try:
        o = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError("not JSON: %s" % e)
    if not isinstance(o, dict):
        raise ValueError("not an object")
    if "note" in o:
        if not isinstance(o.get("bench"), str) or not isinstance(
                o["note"], str):
            raise ValueError("a note needs string bench and note")
        return o
    for k in ("bench", "param", "impl", "unit"):
        if not isinstance(o.get(k), str) or not o[k]:
            raise ValueError("%s: missing or not a string" % k)
    v = o.get("value")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or \
            not math.isfinite(v) or v < 0:
        raise ValueError("value: not a finite number >= 0")
    if higher_better(o["unit"]) and v <= 0:
        raise ValueError("value: a rate must be > 0")
    r = o.get("run")
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError("run: not an integer >= 1")
    for k, x in o.items():
        if not isinstance(x, (str, int, float)) or isinstance(x, bool):
            raise ValueError("%s: not a number or string" % k)
    return o


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def is_floor(impl):
    return impl.startswith("raw")


def is_peer(impl):
    return not impl.startswith("proa") and not is_floor(impl)


def impl_order(impls):
    def key(i):
        if i == "proa":
            return (0, i)
        if i.startswith("proa"):
            return (1, i)
        if i.startswith("raw"):
            return (3, i)
        return (2, i)
    return sorted(impls, key=key)


def fmt(x):
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 1e6:
        return "%.3gM" % (x / 1e6)
    if a >= 1e4:
        return "%.1fk" % (x / 1e3)
    if a >= 100:
        return "%.0f" % x
    return "%.3g" % x


def per_run(runs, impl, best, higher):
    """The ratio of impl against best run by run, paired by run number:
    (median, min, max), or None with fewer than two pairs.  A ratio of
    medians hides how the two moved together; on a noisy host the runs'
    own ratios say whether a row holds in every run or only on the
    median."""
    a, b = runs.get(impl, {}), runs.get(best, {})
    rs = [(a[r] / b[r] if higher else b[r] / a[r])
          for r in sorted(set(a) & set(b)) if a[r] > 0 and b[r] > 0]
    if len(rs) < 2:
        return None
    return median(rs), min(rs), max(rs)


def ratio(md, impl, higher, among=is_peer, runs=None):
    """Times better than the best of the row's impls that `among` accepts
    (the peers, or the floors): >1, impl ahead.  With @runs ({impl: {run:
    value}}), also the median and range of the per-run ratios."""
    peers = {i: v for i, v in md.items() if among(i)}
    if impl not in md or not peers:
        return "-"
    best = (max if higher else min)(peers, key=lambda i: peers[i])
    p, b = md[impl], peers[best]
    if p <= 0 or b <= 0:
        return "-"
    out = "%.2fx vs %s" % (p / b if higher else b / p, best)
    pr = per_run(runs or {}, impl, best, higher)
    if pr:
        out += "; per run %.2fx (%.2f-%.2f)" % pr
    return out


def best_variants(meds):
    """(meds with one variant per (part, bench, param, impl): the best
    one, all units of it; every variant's medians)."""
    by = {}
    for m in meds:
        if "variant" in m:
            k = (m["part"], m["bench"], m["param"], m["impl"])
            by.setdefault(k, {}).setdefault(m["variant"], []).append(m)
    best = {}
    for k, vs in by.items():
        def score(v):
            ms = vs[v]
            rate = [m for m in ms if higher_better(m["unit"])]
            if rate:
                return rate[0]["median"]
            return -ms[0]["median"]
        best[k] = max(vs, key=score)
    out, variants = [], []
    for m in meds:
        if "variant" not in m:
            out.append(m)
            continue
        variants.append(m)
        if best[(m["part"], m["bench"], m["param"], m["impl"])] == \
                m["variant"]:
            out.append(m)
    return out, variants


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def plot(stem, bench, meds, tput_unit, cpu_unit, x_key, other_key,
         x_label, other_fmt, extra_filter):
    """One PNG: rows throughput and CPU/op, one column per value of
    other_key; lines per impl with min-max error bars.  Returns the path
    or None when there is nothing to plot."""
    rows = [m for m in meds if m["bench"] == bench and extra_filter(m)
            and x_key in m and other_key in m]
    if not rows:
        return None
    others = sorted({m[other_key] for m in rows})
    impls = impl_order({m["impl"] for m in rows})
    datdir = stem + "-plotdata"
    os.makedirs(datdir, exist_ok=True)
    png = "%s-%s-%s.png" % (stem, bench, x_key)
    gp = ["set terminal pngcairo size %d,720 font ',9'" %
          max(480, 420 * len(others)),
          "set output '%s'" % png,
          "set multiplot layout 2,%d title '%s: %s' noenhanced" %
          (len(others), bench, os.path.basename(stem)),
          "set logscale x 2", "set grid", "set key top left noenhanced",
          "set offsets graph 0.05, graph 0.05, graph 0.05, 0"]
    for unit, logy in ((tput_unit, False), (cpu_unit, True)):
        for o in others:
            fn = os.path.join(datdir, "%s-%s-%s-%s.dat" % (
                bench, x_key, o, unit.replace(" ", "_").replace("/", "_")))
            xs = sorted({m[x_key] for m in rows if m[other_key] == o})
            with open(fn, "w") as f:
                f.write("# %s  then per impl: median min max (%s)\n" %
                        (x_key, " ".join(impls)))
                for x in xs:
                    cells = []
                    for i in impls:
                        m = [r for r in rows if r["impl"] == i and
                             r["unit"] == unit and r[other_key] == o and
                             r[x_key] == x]
                        if m:
                            cells += ["%g" % m[0][k]
                                      for k in ("median", "min", "max")]
                        else:
                            cells += ["NaN"] * 3
                    f.write("%g %s\n" % (x, " ".join(cells)))
            gp.append("set title '%s' noenhanced" % other_fmt(o))
            gp.append("set xlabel '%s'" % x_label)
            gp.append("set ylabel '%s' noenhanced" %
                      (unit if logy is False else "server " + unit))
            gp.append("set xtics (%s)" % ", ".join(
                "'%s' %g" % (size_name(int(x)) if x_key == "size" else
                             "%g" % x, x) for x in xs))
            gp.append("set yrange [0:*]" if not logy else
                      "set autoscale y")
            gp.append("plot " + ", ".join(
                "'%s' using 1:%d:%d:%d with yerrorlines title '%s'" %
                (fn, 2 + 3 * k, 3 + 3 * k, 4 + 3 * k, i)
                for k, i in enumerate(impls)))
    gp.append("unset multiplot")
    r = subprocess.run(["gnuplot"], input="\n".join(gp) + "\n", text=True,
                       capture_output=True)
    if r.returncode != 0 or not os.path.exists(png) or \
            os.path.getsize(png) == 0:
        raise RuntimeError("gnuplot failed for %s: %s" % (png, r.stderr))
    return png


def variant_table(vmeds):
    """Markdown lines: every variant's medians, one column per
    impl:variant (empty when no line had a variant)."""
    if not vmeds:
        return []
    cols = []
    for m in vmeds:  # in the order they ran
        if (m["impl"], m["variant"]) not in cols:
            cols.append((m["impl"], m["variant"]))
    out = ["Every variant of the floors (median; the table above shows "
           "the best of each row):", "",
           "| bench | param | unit | " +
           " | ".join("%s %s" % c for c in cols) + " |",
           "|" + "---|" * (3 + len(cols))]
    seen, rk = {}, []
    for m in vmeds:
        k = (m["bench"], m["param"], m["unit"])
        if k not in seen:
            seen[k] = {}
            rk.append(k)
        seen[k][(m["impl"], m["variant"])] = m["median"]
    for k in rk:
        out.append("| " + " | ".join(list(k) + [
            fmt(seen[k][c]) if c in seen[k] else "-" for c in cols]) + " |")
    out.append("")
    return out


def size_name(s):
    if s >= 1 << 20:
        return "%d MiB" % (s >> 20)
    if s >= 1024:
        return "%d KiB" % (s >> 10)
    return "%d B" % s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-stem", required=True)
    ap.add_argument("--runs", type=int, required=True)
    ap.add_argument("--command", default="perf/run")
    ap.add_argument("--placement", default="")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("parts", nargs="*")
    a = ap.parse_args()

    raw, notes, bad, status = [], [], [], {}
    for spec in a.parts:
        part, st, fn = spec.split(":", 2)
        status[part] = int(st)
        with open(fn) as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    o = check_line(line)
                except ValueError as e:
                    bad.append("%s line %d: %s: %s" % (part, n, e,
                                                        line[:200]))
                    continue
                o["part"] = part
                (notes if "note" in o else raw).append(o)
    if bad:
        print("perf/run: malformed output:", file=sys.stderr)
        for b in bad[:20]:
            print("  " + b, file=sys.stderr)
        return 1

    # medians per (part, bench, param, unit, impl, variant), in order of
    # arrival
    groups, order = {}, []
    for o in raw:
        k = (o["part"], o["bench"], o["param"], o["unit"], o["impl"],
             o.get("variant", ""))
        if k not in groups:
            groups[k] = []
            order.append(k)
        groups[k].append(o)
    meds = []
    for k in order:
        g = groups[k]
        v = [o["value"] for o in g]
        m = {x: y for x, y in g[0].items() if x not in ("value", "run")}
        m.update(median=median(v), min=min(v), max=max(v), n=len(v))
        meds.append(m)
    meds, variant_meds = best_variants(meds)

    now = datetime.datetime.now().astimezone()
    host = socket.gethostname().split(".")[0]
    stem = a.out_stem
    os.makedirs(os.path.dirname(os.path.abspath(stem)), exist_ok=True)

    # plots
    plots, plot_err = [], None
    if shutil.which("gnuplot") is None:
        plot_err = "gnuplot is not installed (scripts/setup.sh bench): " \
                   "no plots"
    else:
        specs = [
            ("echo", "msgs/s", "cpu us/msg",
             lambda m: m.get("depth") == 1),
            ("http", "req/s", "cpu us/req",
             lambda m: m.get("depth", 1) == 1),
        ]
        try:
            for bench, tu, cu, flt in specs:
                for xk, ok, xl, ofmt in (
                        ("conns", "size", "connections",
                         lambda o: "%s messages" % size_name(o)),
                        ("size", "conns", "message size (bytes)",
                         lambda o: "%d connections" % o)):
                    p = plot(stem, bench, meds, tu, cu, xk, ok, xl, ofmt,
                             flt)
                    if p:
                        plots.append(p)
        except RuntimeError as e:
            print("perf/run: %s" % e, file=sys.stderr)
            return 1

    # markdown
    md = []
    md.append("# proa against its peers, %s on %s" %
              (now.strftime("%Y-%m-%d %H:%M %Z"), host))
    md.append("")
    md.append("- command: `%s`" % a.command)
    md.append("- machine: %s, %d CPUs (`nproc`), %s, kernel %s" %
              (host, os.cpu_count(), cpu_model(), platform.release()))
    md.append("- %s; median of %d run(s), (min-max) when more than one" %
              (a.placement or "placement: see perf/README.md", a.runs))
    md.append("- ratio: how many times better than the best peer of the "
              "row (>1: proa ahead); peer/proa for times and costs, "
              "proa/peer for rates (units ending in /s).  proa-epoll is "
              "proa on its epoll backend, not a peer.  vs raw: the same "
              "against the row's floor (raw_*: hand-written code on the "
              "bare kernel interface, not a peer; 1.00x = at the floor).  "
              "per run: the same ratio in each run, paired by run "
              "number, median (min-max).")
    if a.quick:
        md.append("- **--quick**: a smoke run, the numbers mean nothing")
    md.append("")
    for part in status:
        rows = [m for m in meds if m["part"] == part]
        pnotes = [n["note"] for n in notes if n["part"] == part]
        md.append("## %s" % PART_TITLES.get(part, part))
        md.append("")
        if part in PART_NOTES:
            md.append(PART_NOTES[part])
            md.append("")
        st = status[part]
        if st == 77:
            pnotes.append("skipped: a tool it needs is missing")
        elif st != 0:
            pnotes.append("FAILED (exit status %d); rows may be missing" %
                          st)
        if rows:
            impls = impl_order({m["impl"] for m in rows})
            proas = [i for i in impls if i.startswith("proa")]
            floors = any(is_floor(i) for i in impls)
            hdr = ["bench", "param", "unit"] + impls + \
                ["%s vs best peer" % p for p in proas]
            if floors:
                hdr += ["%s vs raw" % p for p in proas]
            md.append("| " + " | ".join(hdr) + " |")
            md.append("|" + "---|" * len(hdr))
            seen, rk = {}, []
            for m in rows:
                k = (m["bench"], m["param"], m["unit"])
                if k not in seen:
                    seen[k] = {}
                    rk.append(k)
                seen[k][m["impl"]] = m
            for k in rk:
                cells = []
                for i in impls:
                    m = seen[k].get(i)
                    if m is None:
                        cells.append("-")
                        continue
                    c = fmt(m["median"])
                    if m["n"] > 1:
                        c += " (%s-%s)" % (fmt(m["min"]), fmt(m["max"]))
                    if "variant" in m:
                        c += " %s" % m["variant"]
                    cells.append(c)
                mdn = {i: m["median"] for i, m in seen[k].items()}
                # each impl's values by run, of the variant shown
                byrun = {i: {o["run"]: o["value"] for o in groups[
                    (part,) + k + (i, m.get("variant", ""))]}
                    for i, m in seen[k].items()}
                rt = [ratio(mdn, p, higher_better(k[2]), runs=byrun)
                      for p in proas]
                if floors:
                    rt += [ratio(mdn, p, higher_better(k[2]), is_floor,
                                 byrun)
                           for p in proas]
                md.append("| " + " | ".join(list(k) + cells + rt) + " |")
            md.append("")
            md += variant_table(
                [m for m in variant_meds if m["part"] == part])
        elif st == 0:
            pnotes.append("no measurements")
        for n in pnotes:
            md.append("- note: %s" % n)
        if pnotes:
            md.append("")
    if plots:
        md.append("## Plots")
        md.append("")
        for p in plots:
            md.append("![%s](%s)" % (os.path.basename(p),
                                     os.path.basename(p)))
        md.append("")
    if plot_err:
        md.append("- note: %s" % plot_err)
    text = "\n".join(md) + "\n"
    with open(stem + ".md", "w") as f:
        f.write(text)

    doc = {
        "host": host, "date": now.isoformat(timespec="seconds"),
        "kernel": platform.release(), "cpus": os.cpu_count(),
        "cpu_model": cpu_model(), "runs": a.runs, "quick": a.quick,
        "command": a.command, "placement": a.placement,
        "parts": status, "notes": notes, "plots": [os.path.basename(p)
                                                   for p in plots],
        "medians": meds, "variant_medians": variant_meds, "raw": raw,
    }
    with open(stem + ".json", "w") as f:
        json.dump(doc, f, indent=0)
        f.write("\n")
    sys.stdout.write(text)
    return 3 if plot_err else 0


if __name__ == "__main__":
    sys.exit(main())
