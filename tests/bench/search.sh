#!/usr/bin/env bash
# Insight search benchmark (issue 16): `GET /api/v1/analysis/insights?q=` through the
# store adapter on PostgreSQL over INSIGHTS stored insights of USERS tenants
# (tests/bench/src/bin/search_bench.rs): p50, p99 and mean of ITERATIONS calls
# per query of a mix (rare word, common word, two words, word + severity,
# attribute word, no match) with the GIN index as the API runs it, the same
# with custom plans forced (equal while the adapter plans each search with its
# words), and without the index (the reference), in the same
# run on the same data; ON_THE_FLY calls per query with the tsvector computed
# per row (0 skips). Each round loads a fresh database. Prints each round's
# table and plans, then the medians of ROUNDS rounds.
# Usage: ROUNDS=3 INSIGHTS=100000 USERS=10 bash tests/bench/search.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../.ci/lib.sh"
cd "$ROOT"
ROUNDS="${ROUNDS:-3}"; INSIGHTS="${INSIGHTS:-100000}"; USERS="${USERS:-10}"
ITERATIONS="${ITERATIONS:-200}"; ON_THE_FLY="${ON_THE_FLY:-20}"
ensure_rust
ensure_postgres
cargo build --release --locked -q -p panoptes-bench --bin search-bench
OUT="${TMPDIR:-/tmp}/search-bench"; mkdir -p "$OUT"; rm -f "$OUT"/round-*.json
for round in $(seq 1 "$ROUNDS"); do
  log "round $round of $ROUNDS"
  ./target/release/search-bench --postgres-url "$PANOPTES_TEST_POSTGRES_URL" \
    --insights "$INSIGHTS" --users "$USERS" --iterations "$ITERATIONS" \
    --on-the-fly-iterations "$ON_THE_FLY" --out "$OUT/round-$round.json"
done
python3 - "$OUT"/round-*.json <<'PY'
import json, statistics, sys
rounds = [json.load(open(p)) for p in sys.argv[1:]]
first = rounds[0]
modes = [m["mode"] for m in first["modes"]]
queries = [q["query"] for q in first["modes"][0]["queries"]]
def med(mode, query, key):
    vals = []
    for r in rounds:
        m = next(m for m in r["modes"] if m["mode"] == mode)
        fig = m["overall"] if query is None else next(q for q in m["queries"] if q["query"] == query)
        vals.append(fig[key])
    return statistics.median(vals)
print(f"\n## Medians of {len(rounds)} rounds: {first['insights']} insights of {first['tenants']} tenants, "
      f"PostgreSQL {first['postgres']}, {first['iterations']} calls per query and mode\n")
print("| query | " + " | ".join(f"{m} p50 / p99 / mean ms" for m in modes) + " |")
print("|---|" + "---|" * len(modes))
for q in queries + [None]:
    cells = [" / ".join(f"{med(m, q, k):.2f}" for k in ("p50Ms", "p99Ms", "meanMs")) for m in modes]
    name = q if q else "**all queries**"
    print(f"| {name} | " + " | ".join(cells) + " |")
for key, label in (("ratioNoIndexToIndex", "as the API runs it"),
                   ("ratioNoIndexToIndexCustomPlans", "with custom plans")):
    r = {k: statistics.median(x[key][k] for x in rounds) for k in ("p50", "p99", "mean")}
    print(f"\nWithout the index / with it ({label}), all queries: "
          f"p50 {r['p50']:.1f}x, p99 {r['p99']:.1f}x, mean {r['mean']:.1f}x")
PY
