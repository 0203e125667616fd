"""benchlib.report - bench/ingest's goals, the posthorn / Postfix
ratios and verdicts of a run, and its text tables (one per mode: unpinned,
pinned), with the per-program accounting, the floors (benchlib.floor)
against the goals, and the one-CPU latency figure.
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


def floor_verdicts(floors, pf, ph):
    """The latency and CPU goals of a mode in ms (from Postfix's figures)
    against its floors (benchlib.floor.combine_floors): {"goal_ms": {...},
    "verdict": {"latency": "below floor" | "above floor", "cpu": ...}}
    for each goal whose Postfix and posthorn figures and floor exist; {}
    when there is none."""
    goal_ms, verdict = {}, {}
    for key, fig, ratio_max in (("latency", "latency_ms", GOALS["latency_ratio_max"]),
                                ("cpu", "cpu_ms_per_msg", GOALS["cpu_ratio_max"])):
        fl = floors.get(f"{key}_floor_ms")
        if fl is None or not pf or not ph or not pf.get(fig) or ph.get(fig) is None:
            continue
        goal_ms[key] = round(ratio_max * pf[fig], 4)
        verdict[key] = "below floor" if goal_ms[key] < fl else "above floor"
    return {"goal_ms": goal_ms, "verdict": verdict} if verdict else {}


SESSION_FLOOR_WHAT = {
    "session": "a process per SMTP session doing the dialogue and the file steps with their "
               "syncs itself, nothing else",
    "pipeline": "the same split into posthorn's processes (a cleanup per session, qmgr, two "
                "delivery processes) doing nothing but the hand-overs",
}


def session_floor_texts(fl, pf, ph):
    """The session floors of a mode (benchlib.floor.session_floor, inline
    as "session", split as "pipeline") against posthorn's and the goal's
    CPU per message, a line each; [] when they were not measured."""
    out = []
    for key, label in (("session", "session floor"), ("pipeline", "pipeline floor")):
        sess = fl.get(key)
        if not sess:
            continue
        if sess.get("error"):
            out.append(f"{label} (bench/session-floor.c): ERROR: "
                       f"{sess['error'].splitlines()[0]}")
            continue
        text = (f"{label} (bench/session-floor.c {sess.get('mode', 'inline')}: "
                f"{SESSION_FLOOR_WHAT[key]}, {sess['processes']} processes): "
                f"{sess['cpu_ms_per_msg']:.2f} ms CPU/msg, {sess['msgs_per_s']:.0f} msgs/s")
        if ph and ph.get("cpu_ms_per_msg") is not None:
            text += (f"; posthorn {ph['cpu_ms_per_msg']:.2f} = that + "
                     f"{ph['cpu_ms_per_msg'] - sess['cpu_ms_per_msg']:.2f}")
        if pf and pf.get("cpu_ms_per_msg"):
            goal = pf["cpu_ms_per_msg"] / 3
            text += (f"; the CPU goal (1/3 x Postfix) {goal:.2f} leaves "
                     f"{goal - sess['cpu_ms_per_msg']:.2f} for everything else")
        out.append(text)
    return out


def _floor_lines(fl, pf, ph):
    """The floors of a mode against its goals, as text lines."""
    _floor_lines_sync_smtp(fl, pf, ph)
    for text in session_floor_texts(fl, pf, ph):
        print(f"  {text}")


def _floor_lines_sync_smtp(fl, pf, ph):
    """The sync and SMTP floors of a mode against its goals."""
    sync, smtp = fl.get("sync"), fl.get("smtp")
    n = (sync or {}).get("syncs_per_msg")
    syncs = f"{n:g} syncs" if n is not None else "its syncs"
    print(f"floors (same run; what any server with posthorn's {syncs} per message needs at "
          f"least):")
    for part, x in (("sync floor (bench/sync-floor.c)", sync), ("SMTP floor (smtp-sink)", smtp)):
        if x is None:
            print(f"  {part}: not measured (see the log)")
        elif x.get("error"):
            print(f"  {part}: ERROR: {x['error'].splitlines()[0]}")
    if fl.get("latency_floor_ms") is None:
        return
    goal, verdict = fl.get("goal_ms") or {}, fl.get("verdict") or {}
    label = {"connect_to_250_ms": "connect->250", "eod_to_250_ms": "end-of-data->250"}[
        fl["latency_floor_smtp_part"]]
    for key, what, total, smtp_ms, sync_ms, nosync_ms, goal_text, now in (
            ("latency", "latency", fl["latency_floor_ms"], smtp[fl["latency_floor_smtp_part"]],
             sync["wall_ms_per_msg"], sync["no_sync_wall_ms_per_msg"],
             f"{GOALS['latency_ratio_max']:g} x Postfix {(pf or {}).get('latency_ms') or 0:.2f}",
             (ph or {}).get("latency_ms")),
            ("cpu", "CPU", fl.get("cpu_floor_ms"), smtp.get("cpu_ms_per_msg"),
             sync["cpu_ms_per_msg"], sync["no_sync_cpu_ms_per_msg"],
             f"1/3 x Postfix {(pf or {}).get('cpu_ms_per_msg') or 0:.2f}",
             (ph or {}).get("cpu_ms_per_msg"))):
        if total is None:
            continue
        dialogue = (f"SMTP dialogue with smtp-sink {smtp_ms:.2f} ({label})" if key == "latency"
                    else f"smtp-sink {smtp_ms:.2f}")
        text = (f"  {what} {total:.2f} ms{'/msg' if key == 'cpu' else ''} = {dialogue} + "
                f"file steps with {syncs} {sync_ms:.2f} (without the syncs {nosync_ms:.2f})")
        if key in verdict:
            text += f"; goal {goal_text} = {goal[key]:.2f} ms: "
            if verdict[key] == "below floor":
                text += "the goal is BELOW the floor (unreachable with every fsync kept)"
            else:
                text += (f"the goal is above the floor (headroom {goal[key] - total:.2f} ms; "
                         f"posthorn now {now:.2f})")
        print(text)
    if smtp.get("msgs_per_s"):
        print(f"  smtp-sink under smtp-source: {smtp['msgs_per_s']:.0f} msgs/s ({smtp['messages']} "
              f"messages over {smtp['sessions']} sessions); sync-floor: {sync['messages']} "
              f"messages of {sync['size']} bytes")


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
            out[name] = {"two_cpus_ms": a, "one_cpu_ms": b, "ratio": ratio(b, a),
                         "samples": len(pi[name]["latency"]["eod_to_250_ms"]["samples_ms"])}
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
    if r.get("floors"):
        _floor_lines(r["floors"], pf if pf and "error" not in pf else None,
                     ph if ph and "error" not in ph else None)
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
        few = result["params"]["latency_messages"] < 20
        print("\nend-of-data->250, servers on one CPU (pinned) vs two (unpinned), medians"
              + (" (of fewer than 20 probes: noise; use -l 40)" if few else "") + ":")
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
            for c, v in sc["by_program"].items():
                if v["total"] >= 0.5:
                    top = ", ".join(f"{k} {n:.1f}" for k, n in list(v["top"].items())[:6])
                    print(f"    {c}: {top}")
        elif sc:
            print(f"  {label}: syscall count: {sc['error']}")
