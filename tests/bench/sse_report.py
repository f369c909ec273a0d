"""Prints the SSE benchmark's table from the probe's JSON lines (sse.sh)."""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1])]
targets = sys.argv[2:]


def pick(kind, target, **kv):
    return [r for r in rows if r["kind"] == kind and r["target"] == target
            and all(r.get(k) == v for k, v in kv.items())]


def one(kind, target, key, fmt="{:.2f}", **kv):
    r = pick(kind, target, **kv)
    return fmt.format(r[0][key]) if r and r[0].get(key) is not None else "n/a"


def lost(r):
    return max(0, r["expectedDeliveries"] - r["deliveries"]) + r["gaps"]


def best_step(t):
    ok = [r for r in pick("step", t)
          if r["p99ms"] <= 50 and lost(r) == 0 and r["deliveries"] >= r["expectedDeliveries"]]
    return max((r["deliveriesPerSecond"] for r in ok), default=0)


table = []
for n in sorted({r["streams"] for r in rows if r["kind"] == "idle"}):
    table.append((f"KB per idle stream @ {n}", [one("idle", t, "kbPerStream", "{:.1f}", streams=n) for t in targets]))
    table.append((f"seconds to open {n} streams", [one("idle", t, "connectSeconds", "{:.1f}", streams=n) for t in targets]))
steady = {t: pick("steady", t) for t in targets}
n = next((r[0]["connections"] for r in steady.values() if r), 0)
rate = next((r[0]["targetRate"] for r in steady.values() if r), 0)
per = next((r[0]["connections"] // r[0]["channels"] for r in steady.values() if r), 0)
print(f"Steady: {n} streams at {rate} deliveries/s; {per} streams per channel unless said")
table.append(("p50 ms @ steady", [one("steady", t, "p50ms") for t in targets]))
table.append(("p99 ms @ steady", [one("steady", t, "p99ms") for t in targets]))
table.append(("  events lost", [str(lost(steady[t][0])) if steady[t] else "n/a" for t in targets]))
table.append(("  CPU cores: server / probe", [
    f"{r[0].get('serverCores') or 0:.2f} / {r[0].get('probeCores') or 0:.2f}" if (r := steady[t]) else "n/a" for t in targets]))
bc = {t: pick("broadcast", t) for t in targets}
bn = next((r[0]["connections"] // r[0]["channels"] for r in bc.values() if r), 0)
table.append((f"p50 ms, {bn} streams per channel", [one("broadcast", t, "p50ms") for t in targets]))
table.append((f"p99 ms, {bn} streams per channel", [one("broadcast", t, "p99ms") for t in targets]))
table.append(("  events lost", [str(lost(bc[t][0])) if bc[t] else "n/a" for t in targets]))
table.append((f"seconds for {n} to resume", [one("resume", t, "resumeSeconds", "{:.1f}") for t in targets]))
table.append(("  events lost / duplicated", [
    f"{lost(r[0])} / {r[0]['duplicates']}" if (r := pick("resume", t)) else "n/a (no history)" for t in targets]))
table.append(("max deliveries/s, p99<=50ms, 1k", [f"{best_step(t):.0f}" for t in targets]))

width = 36
print("\nSSE benchmark (same machine, same probe; client and servers share the cores)")
print(f"{'':<{width}}" + "".join(f"{t:>18}" for t in targets))
for label, cells in table:
    print(f"{label:<{width}}" + "".join(f"{c:>18}" for c in cells))
if "ours" in targets:
    for ref in [t for t in targets if t != "ours"]:
        b = best_step(ref)
        if b:
            print(f"ours / {ref} max deliveries/s: {best_step('ours') / b:.2f}")
print("\nSteps (1k streams on 10 channels):")
for t in targets:
    for r in pick("step", t):
        print(f"  {t:<12} {r['targetRate']:>7}/s: got {r['deliveriesPerSecond']:>7.0f}/s "
              f"p50 {r['p50ms']:.2f} p99 {r['p99ms']:.2f} ms lost {lost(r)}; "
              f"CPU cores: server {r.get('serverCores') or 0:.2f}, probe {r.get('probeCores') or 0:.2f}")
