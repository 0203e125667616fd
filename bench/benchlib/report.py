"""benchlib.report - bench/ingest's goals, the posthorn / Postfix
ratios and verdicts of a run, and its text tables (one per mode: unpinned,
pinned), with the per-program accounting and the one-CPU latency figure.
bench/mkreport renders the same JSON as Markdown.  Standard library
only."""
from .util import ratio

GOALS = {
    "rate_ratio_min": 3.0,        # posthorn msgs/s >= 3 x Postfix's
    "cpu_ms_per_msg_max": 1.0,    # posthorn CPU per message < 1 ms
    "latency_ratio_max": 0.4,     # posthorn latency <= 0.4 x Postfix's
    "pss_ratio_max": 0.25,        # posthorn peak PSS <= 1/4 of Postfix's
}
ONE_CPU_EOD_250_MAX = 1.5       # end-of-data->250 pinned (server on one CPU) <= 1.5 x unpinned



GOALS["cpu_ratio_max"] = 1 / 3      # issue 15: CPU per message <= 1/3 of Postfix's
MODE_LABELS = {"unpinned": "unpinned",
               "pinned": "pinned: every server process on CPU 0, the load client and "
                         "the probes on CPU 1"}


def compare(pf, ph):
    """Ratios (posthorn / Postfix) and goal verdicts of one mode."""
    out = {}
    if not pf or not ph:
        return out
    for key, name in (("msgs_per_s", "rate_ratio"), ("latency_ms", "latency_ratio"),
                      ("cpu_ms_per_msg", "cpu_ratio"), ("peak_pss_kib", "pss_ratio"),
                      ("peak_rss_kib", "rss_ratio"), ("ctxsw_per_msg", "ctxsw_ratio")):
        if ph.get(key) is not None and pf.get(key):
            out[name] = ratio(ph[key], pf[key])
    goals = {}
    if "rate_ratio" in out:
        goals["rate >= 3x Postfix"] = out["rate_ratio"] >= GOALS["rate_ratio_min"]
    if "cpu_ratio" in out:
        goals["CPU < 1 ms/msg"] = ph["cpu_ms_per_msg"] < GOALS["cpu_ms_per_msg_max"]
        goals["CPU <= 1/3 Postfix"] = out["cpu_ratio"] <= GOALS["cpu_ratio_max"]
    if "latency_ratio" in out:
        goals["latency <= 0.4x Postfix"] = out["latency_ratio"] <= GOALS["latency_ratio_max"]
    if "pss_ratio" in out:
        goals["peak PSS <= 1/4 Postfix"] = out["pss_ratio"] <= GOALS["pss_ratio_max"]
    out["goals"] = goals
    return out


def eod_250(r):
    lat = (r or {}).get("latency") or {}
    return (lat.get("eod_to_250_ms") or {}).get("median_ms")


def one_cpu(result):
    """End of DATA -> 250 with the servers on one CPU (the pinned mode)
    against unpinned (two CPUs), per server, and the verdict of issue 15's
    item 2 for posthorn (<= 1.5x).  {} unless both modes ran."""
    un, pi = result.get("unpinned") or {}, result.get("pinned") or {}
    out = {}
    for name in ("postfix", "posthorn"):
        a, b = eod_250(un.get(name)), eod_250(pi.get(name))
        if a and b:
            out[name] = {"two_cpus_ms": a, "one_cpu_ms": b, "ratio": ratio(b, a)}
    if "posthorn" in out:
        out["goal"] = {"end-of-data->250 on one CPU <= 1.5x two CPUs":
                       out["posthorn"]["ratio"] <= ONE_CPU_EOD_250_MAX}
    return out


def _mode_table(result, mode):
    r = result[mode]
    pf, ph = r.get("postfix"), r.get("posthorn")
    cols = [("Postfix", pf), ("posthorn", ph)]
    cmpd = r.get("comparison", {})
    lm = result["params"]["latency_metric"]
    rows = [
        ("msgs/s (end to end)", "msgs_per_s", "{:.1f}", cmpd.get("rate_ratio")),
        ("CPU ms/msg", "cpu_ms_per_msg", "{:.3f}", cmpd.get("cpu_ratio")),
        ("context switches/msg (sampled)", "ctxsw_per_msg", "{:.1f}", cmpd.get("ctxsw_ratio")),
        (f"latency ms ({lm.replace('_ms', '')}, median)", "latency_ms", "{:.2f}",
         cmpd.get("latency_ratio")),
        ("peak PSS MiB (sum)", "peak_pss_kib", "MiB", cmpd.get("pss_ratio")),
        ("peak RSS MiB (sum)", "peak_rss_kib", "MiB", cmpd.get("rss_ratio")),
    ]
    print(f"\n[{MODE_LABELS.get(mode, mode)}]")
    print(f"{'':38} {'Postfix':>12} {'posthorn':>12} {'ratio':>8}")
    for label, key, fmt, rat in rows:
        cells = []
        for _, x in cols:
            if not x or x.get("error") or x.get(key) is None:
                cells.append("-")
            elif fmt == "MiB":
                cells.append(f"{x[key] / 1024:.1f}")
            else:
                cells.append(fmt.format(x[key]))
        print(f"{label:38} {cells[0]:>12} {cells[1]:>12} {('%.3f' % rat) if rat else '-':>8}")
    for name, x in cols:
        if x and "latency" in x:
            lat = x["latency"]
            print(f"  {name}: latency medians connect->file {lat['connect_to_file_ms']['median_ms']:.2f} ms, "
                  f"end-of-data->file {lat['eod_to_file_ms']['median_ms']:.2f} ms, "
                  f"end-of-data->250 {lat['eod_to_250_ms']['median_ms']:.2f} ms")
    for name, x in cols:
        d = (x or {}).get("device_per_msg")
        if d:
            print(f"  {name}: block device per message (median of rounds): {d['writes']:.2f} "
                  f"writes ({d['write_kib']:.1f} KiB), {d['flushes']:.2f} flushes, "
                  f"{d['discards']:.2f} discards")
    for name, x in cols:
        rounds = (x or {}).get("rounds") or []
        if rounds and "error" not in x:
            y = rounds[-1]
            parts = ", ".join(f"{c} {v:.2f}" for c, v in y["cpu_ms_per_msg_by_program"].items()
                              if v >= 0.005)
            print(f"  {name}: CPU ms/msg by program (last round): {parts}, "
                  f"exited unsampled {y['cpu_ms_per_msg_unattributed']:.2f}")
            cs = y.get("ctxsw_per_msg_by_program") or {}
            parts = ", ".join(f"{c} {v['voluntary']:.2f}+{v['involuntary']:.2f}"
                              for c, v in cs.items() if v["voluntary"] + v["involuntary"] >= 0.01)
            if parts:
                print(f"  {name}: context switches/msg by program (voluntary+involuntary, "
                      f"last round): {parts}")
    if cmpd.get("goals"):
        print("goals (posthorn):")
        for g, ok in cmpd["goals"].items():
            print(f"  {'PASS' if ok else 'FAIL'}  {g}")
    for name, x in cols:
        if x and x.get("error"):
            print(f"{name}: ERROR: {x['error']}")


def print_table(result):
    """The text report of a run on stdout."""
    p = result["params"]
    print(f"\ningest: {p['n']} messages x {p['size']} bytes over {p['c']} parallel sessions "
          f"({'persistent' if p['persistent'] else 'one message per session'}), "
          f"client {p['client']}, {p['rounds']} round(s)")
    for mode in p["modes"]:
        if mode in result:
            _mode_table(result, mode)
    oc = result.get("one_cpu") or {}
    if oc:
        print("\nend-of-data->250, servers on one CPU (pinned) vs two (unpinned), medians:")
        for name in ("postfix", "posthorn"):
            if name in oc:
                x = oc[name]
                print(f"  {name}: {x['one_cpu_ms']:.2f} ms vs {x['two_cpus_ms']:.2f} ms "
                      f"= {x['ratio']:.2f}x")
        for g, ok in (oc.get("goal") or {}).items():
            print(f"  {'PASS' if ok else 'FAIL'}  {g}")
    for name, label in (("postfix", "Postfix"), ("posthorn", "posthorn")):
        a = (result.get("audit") or {}).get(name)
        if a and "error" not in a:
            print(f"  {label}: per message {a['file_syncs_per_msg']} file syncs, "
                  f"{a['dir_syncs_per_msg']} directory syncs (strace, {a['messages']} messages)")
    for name, label in (("postfix", "Postfix"), ("posthorn", "posthorn")):
        sc = (result.get("syscalls") or {}).get(name)
        if sc and "error" not in sc:
            parts = ", ".join(f"{c} {v['total']:.1f}" for c, v in sc["by_program"].items()
                              if v["total"] >= 0.05)
            print(f"  {label}: syscalls/msg {sc['per_msg']:.1f} (strace -f, {sc['messages']} "
                  f"messages over {sc['sessions']} sessions): {parts}")
        elif sc:
            print(f"  {label}: syscall count: {sc['error']}")
