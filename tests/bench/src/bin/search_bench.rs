//! `search-bench`: insight search (`GET /api/v1/analysis/insights?q=`) on PostgreSQL,
//! over `--insights` stored insights (100,000 by default, the figure issue 16
//! asks for) of `--users` tenants, with the full-text GIN index and without
//! it, in the same run on the same data (`tests/bench/search.sh` runs it).
//!
//! 1. A fresh database on the server of `--postgres-url` (dropped at the
//!    end), migrated by the store itself.
//! 2. Insights as the insight pipeline leaves them: most completed with a
//!    VLM summary (English sentences from a word bank: queue lengths,
//!    counters, clothing colours, behaviours, with a few rare words), some
//!    failed or pending without one, some with the attribute words of the
//!    people in view; firing times over 90 days. Generated from `--seed`,
//!    loaded with COPY, then `VACUUM ANALYZE` (what autovacuum keeps).
//! 3. Each query of the mix through the store adapter's `list_insights`
//!    (the API's path: the count and the first page of 20, tenant-scoped),
//!    the tenants taken in turn, `--warmup` calls then `--iterations`
//!    measured calls: p50, p99 and mean per query and over the mix. Modes:
//!    - `GIN index`: as the API runs it. The adapter sends a search as an
//!      unnamed statement, so PostgreSQL plans it with its words each time.
//!    - `GIN index, custom plans`: the same with `plan_cache_mode =
//!      force_custom_plan` (a database setting, new connections). Equal to
//!      the first while the adapter's searches are planned per call; were
//!      they cached statements again, the first would fall behind: after
//!      five executions PostgreSQL may switch to a generic plan, blind to
//!      the words' selectivity (a common word then took 3x as long).
//!    - `no index`: after `DROP INDEX insights_search_fts`; the planner
//!      checks the stored `search_tsv` of the tenant's rows.
//!    - `no index, tsvector computed per row` (`--on-the-fly-iterations`
//!      calls, 0 skips it): the same statements with `to_tsvector(...)` in
//!      place of the stored column, what a schema without the generated
//!      column would cost; plain SQL, not through the adapter.
//!
//! `EXPLAIN ANALYZE` of the rare word's page in each mode (and, with the
//! index, of the common word's count and page, and of that page's generic
//! plan) shows which plan PostgreSQL takes.
//! Prints a markdown table; `--out` writes the figures as JSON.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use chrono::Utc;
use clap::Parser;
use panoptes_infra::store::{SqlStore, StoreOptions};
use panoptes_shared::domain::alert::Severity;
use panoptes_shared::domain::page::PageRequest;
use panoptes_shared::domain::user::{Email, Role, User};
use panoptes_shared::ids::UserId;
use panoptes_shared::ports::InsightFilter;
use panoptes_shared::ports::prelude::*;
use serde_json::json;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection};

#[derive(Parser)]
struct Args {
    /// A database on the server to connect to first (the benchmark's own
    /// database is created beside it and dropped at the end).
    #[arg(
        long,
        env = "PANOPTES_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres_url: String,
    /// Stored insights, all tenants together.
    #[arg(long, default_value_t = 100_000)]
    insights: usize,
    /// Tenants the insights are spread over (searches are tenant-scoped).
    #[arg(long, default_value_t = 10)]
    users: usize,
    /// Measured calls per query and mode.
    #[arg(long, default_value_t = 200)]
    iterations: usize,
    /// Calls per query before measuring.
    #[arg(long, default_value_t = 20)]
    warmup: usize,
    /// Measured calls per query of the on-the-fly tsvector variant (0 skips it).
    #[arg(long, default_value_t = 20)]
    on_the_fly_iterations: usize,
    #[arg(long, default_value_t = 16)]
    seed: u64,
    /// Write the figures as JSON here too.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// Keep the database (its name is printed) instead of dropping it.
    #[arg(long)]
    keep: bool,
}

/// SplitMix64: seeded, and enough for picking words.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[self.below(words.len())]
    }

    fn uuid(&mut self) -> uuid::Uuid {
        uuid::Builder::from_random_bytes(
            [self.next().to_le_bytes(), self.next().to_le_bytes()]
                .concat()
                .try_into()
                .unwrap(),
        )
        .into_uuid()
    }
}

const COLOURS: &[&str] = &[
    "black", "white", "gray", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown",
];
const GARMENTS: &[&str] = &[
    "jacket", "coat", "hoodie", "shirt", "sweater", "dress", "cap", "scarf", "backpack", "vest",
];
const PLACES: &[&str] = &[
    "checkout",
    "entrance",
    "service desk",
    "pharmacy counter",
    "self-checkout area",
    "returns desk",
    "ticket office",
    "food court",
    "bakery counter",
    "customer service point",
];
const PEOPLE: &[&str] = &[
    "A man",
    "A woman",
    "A teenager",
    "An elderly customer",
    "A delivery driver",
    "A staff member",
    "A child",
];
const BEHAVIOURS: &[&str] = &[
    "is waiting near the exit",
    "is leaving the line",
    "is talking on the phone",
    "is pushing a shopping cart",
    "is looking at the display",
    "is arguing with the cashier",
    "is carrying several bags",
    "is checking a receipt",
    "is standing still at the front",
    "is walking towards the counter",
    "is holding a basket",
    "is paying by card",
];
const STAFF: &[&str] = &[
    "one cashier is serving",
    "two registers are open",
    "no staff member is visible at the counter",
    "a staff member is restocking shelves nearby",
    "three tills are staffed",
    "only the self-service machines are in use",
];
const TRENDS: &[&str] = &[
    "and it is moving slowly",
    "with the line reaching the aisle",
    "stable over the last five minutes",
    "and growing quickly",
    "while the counter next to it is empty",
];
const MOODS: &[&str] = &[
    "The area looks crowded.",
    "The area is calm.",
    "Customers appear impatient.",
    "The line is orderly.",
    "The scene is busy but under control.",
];
/// Rare sentences: each in about 0.3 % of summaries.
const RARE: &[&str] = &[
    "A wheelchair user is waiting at the side.",
    "An umbrella was left on the floor.",
    "A dog is sitting next to its owner.",
    "A stroller blocks part of the aisle.",
    "A ladder stands unattended near the shelves.",
];

/// A VLM summary of an alert's snapshot.
fn summary(r: &mut Rng) -> String {
    let n = r.range(3, 25);
    let mut s = match r.below(4) {
        0 => format!(
            "{n} customers are waiting in the queue at the {}; {}.",
            r.pick(PLACES),
            r.pick(STAFF)
        ),
        1 => format!(
            "The queue has grown to {n} people, {}. Counter {} is closed.",
            r.pick(TRENDS),
            r.range(1, 8)
        ),
        2 => format!(
            "About {n} people are in the queue zone and {} are being served at the {}.",
            r.range(1, 4),
            r.pick(PLACES)
        ),
        _ => format!(
            "Wait times at the {} are rising: {n} people in line, {}.",
            r.pick(PLACES),
            r.pick(STAFF)
        ),
    };
    for _ in 0..r.range(1, 3) {
        let _ = write!(
            s,
            " {} in a {} {} {}.",
            r.pick(PEOPLE),
            r.pick(COLOURS),
            r.pick(GARMENTS),
            r.pick(BEHAVIOURS)
        );
    }
    let _ = write!(s, " {}", r.pick(MOODS));
    if r.chance(0.015) {
        let _ = write!(s, " {}", r.pick(RARE));
    }
    s
}

/// The attribute words of `n` people (as `AttributeRecord::search_text`).
fn attribute_text(r: &mut Rng, n: u64) -> String {
    (0..n)
        .map(|_| {
            let (u, l) = (r.pick(COLOURS), r.pick(COLOURS));
            format!("upper {u} lower {l} {u} {l}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One query of the mix.
struct Query {
    name: &'static str,
    q: &'static str,
    severity: Option<Severity>,
}

const QUERIES: &[Query] = &[
    Query {
        name: "rare word",
        q: "wheelchair",
        severity: None,
    },
    Query {
        name: "common word",
        q: "queue",
        severity: None,
    },
    Query {
        name: "two words",
        q: "red jacket",
        severity: None,
    },
    Query {
        name: "word + severity",
        q: "crowded",
        severity: Some(Severity::Critical),
    },
    Query {
        name: "attribute word",
        q: "purple",
        severity: None,
    },
    Query {
        name: "no match",
        q: "giraffe",
        severity: None,
    },
];

/// The adapter's statements (`infra/src/store/insights.rs`, `PG_MATCH`) with
/// `tsv` as the searched tsvector, for EXPLAIN and the on-the-fly variant.
fn statements(tsv: &str) -> (String, String) {
    let filters = "FROM insights WHERE user_id = $1 AND (device_id = $2 OR $2 = '') \
          AND (scene_id = $3 OR $3 = '') AND (severity = $4 OR $4 = '') \
          AND (vlm_status = $5 OR $5 = '') AND triggered_at >= $6 AND triggered_at <= $7 \
          AND ($8 < 0 OR (CASE WHEN vlm_summary IS NULL THEN 0 ELSE 1 END) = $8) \
          AND ($9 < 0 OR (CASE WHEN attribute_count > 0 THEN 1 ELSE 0 END) = $9)";
    let matching = format!("AND {tsv} @@ to_tsquery('simple', $10)");
    (
        format!("SELECT COUNT(*) {filters} {matching}"),
        format!(
            "SELECT id, user_id, alert_id, device_id, scene_id, task_id, severity, vlm_status, \
             vlm_summary, vlm_structured_result, failure_reason, model, prompt_tokens, \
             completion_tokens, total_tokens, attempts, snapshot_key, triggered_at, created_at, \
             updated_at, completed_at, attribute_count {filters} {matching} \
             ORDER BY triggered_at DESC, id DESC LIMIT $11 OFFSET $12"
        ),
    )
}

const STORED_TSV: &str = "search_tsv";
const COMPUTED_TSV: &str =
    "to_tsvector('simple', coalesce(vlm_summary, '') || ' ' || coalesce(attribute_text, ''))";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[derive(Clone, Copy)]
struct Figures {
    p50: f64,
    p99: f64,
    mean: f64,
    n: usize,
}

fn figures(ms: &[f64]) -> Figures {
    let mut s = ms.to_vec();
    s.sort_by(f64::total_cmp);
    Figures {
        p50: percentile(&s, 0.5),
        p99: percentile(&s, 0.99),
        mean: s.iter().sum::<f64>() / s.len().max(1) as f64,
        n: s.len(),
    }
}

/// One mode's figures: per query (with the matches of the first tenant),
/// and over the whole mix.
struct ModeResult {
    mode: &'static str,
    per_query: Vec<(&'static str, Figures, u64)>,
    overall: Figures,
}

fn filter(q: &Query) -> InsightFilter {
    InsightFilter {
        q: Some(q.q.to_owned()),
        severity: q.severity,
        ..InsightFilter::default()
    }
}

/// Each query through the adapter: warm-up, then `iterations` timed calls,
/// the tenants in turn.
async fn measure_store(
    store: &SqlStore,
    users: &[UserId],
    mode: &'static str,
    warmup: usize,
    iterations: usize,
) -> anyhow::Result<ModeResult> {
    let page = PageRequest::default();
    let mut per_query = Vec::new();
    let mut all = Vec::new();
    for q in QUERIES {
        let f = filter(q);
        for i in 0..warmup {
            store
                .list_insights(users[i % users.len()], &f, page)
                .await?;
        }
        let matches = store.list_insights(users[0], &f, page).await?.total;
        let mut ms = Vec::with_capacity(iterations);
        for i in 0..iterations {
            let user = users[i % users.len()];
            let t = Instant::now();
            let listed = store.list_insights(user, &f, page).await?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            std::hint::black_box(listed);
        }
        all.extend_from_slice(&ms);
        per_query.push((q.name, figures(&ms), matches));
    }
    Ok(ModeResult {
        mode,
        per_query,
        overall: figures(&all),
    })
}

/// `q` as the adapter binds it for `to_tsquery`: its words ANDed (the
/// benchmark's queries are plain words).
fn tsquery_text(q: &str) -> String {
    q.split_whitespace().collect::<Vec<_>>().join(" & ")
}

/// The adapter's ten filter values for a tenant, `severity` and `q`.
macro_rules! binds {
    ($query:expr, $user:expr, $severity:expr, $q:expr) => {
        $query
            .bind($user.to_string())
            .bind("")
            .bind("")
            .bind($severity)
            .bind("")
            .bind(i64::MIN)
            .bind(i64::MAX)
            .bind(-1_i64)
            .bind(-1_i64)
            .bind(tsquery_text($q))
    };
}

/// The same statements with the tsvector computed per row, as plain SQL.
async fn measure_on_the_fly(
    pool: &PgPool,
    users: &[UserId],
    warmup: usize,
    iterations: usize,
) -> anyhow::Result<ModeResult> {
    let (count_sql, page_sql) = statements(COMPUTED_TSV);
    let mut per_query = Vec::new();
    let mut all = Vec::new();
    for q in QUERIES {
        let severity = q.severity.map(|s| s.as_str()).unwrap_or_default();
        let call = |user: UserId| {
            let (count_sql, page_sql) = (&count_sql, &page_sql);
            async move {
                let count = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(count_sql.clone()));
                let total = binds!(count, user, severity, q.q).fetch_one(pool).await?;
                let page = sqlx::query(sqlx::AssertSqlSafe(page_sql.clone()));
                let rows = binds!(page, user, severity, q.q)
                    .bind(20_i64)
                    .bind(0_i64)
                    .fetch_all(pool)
                    .await?;
                std::hint::black_box(rows);
                anyhow::Ok(total as u64)
            }
        };
        for i in 0..warmup {
            call(users[i % users.len()]).await?;
        }
        let matches = call(users[0]).await?;
        let mut ms = Vec::with_capacity(iterations);
        for i in 0..iterations {
            let t = Instant::now();
            call(users[i % users.len()]).await?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        all.extend_from_slice(&ms);
        per_query.push((q.name, figures(&ms), matches));
    }
    Ok(ModeResult {
        mode: "no index, tsvector computed per row",
        per_query,
        overall: figures(&all),
    })
}

/// EXPLAIN ANALYZE of a statement of `q` for `user`: planned with its values
/// as the adapter's searches are, or (`generic`) with the generic plan a
/// cached statement may switch to after five executions.
#[derive(Debug, Clone, Copy)]
enum Statement {
    Count,
    Page,
}

async fn explain(
    url: &str,
    tsv: &str,
    statement: Statement,
    user: UserId,
    q: &str,
    generic: bool,
) -> anyhow::Result<String> {
    let (count_sql, page_sql) = statements(tsv);
    let (sql, types, paging) = match statement {
        Statement::Count => (count_sql, "", ""),
        Statement::Page => (page_sql, ", bigint, bigint", ", 20, 0"),
    };
    // A connection of its own: its prepared statement is no pool's business.
    let mut conn = PgConnection::connect(url).await?;
    if generic {
        conn.execute("SET plan_cache_mode = force_generic_plan")
            .await?;
    }
    conn.execute(sqlx::AssertSqlSafe(format!(
        "PREPARE s (text, text, text, text, text, bigint, bigint, bigint, bigint, text{types}) AS {sql}"
    )))
    .await?;
    let args = format!(
        "'{user}', '', '', '', '', {}, {}, -1, -1, '{}'{paging}",
        i64::MIN,
        i64::MAX,
        tsquery_text(q)
    );
    let lines: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) EXECUTE s ({args})"
    )))
    .fetch_all(&mut conn)
    .await?;
    conn.close().await?;
    Ok(lines.join("\n"))
}

async fn load(pool: &PgPool, users: &[UserId], n: usize, seed: u64) -> anyhow::Result<u64> {
    let mut r = Rng(seed);
    let end = Utc::now().timestamp_millis();
    let start = end - 90 * 86_400_000;
    // Each tenant: 20 cameras, each with a scene.
    let devices: Vec<Vec<(uuid::Uuid, uuid::Uuid)>> = users
        .iter()
        .map(|_| (0..20).map(|_| (r.uuid(), r.uuid())).collect())
        .collect();
    let mut conn = pool.acquire().await?;
    let mut copy = conn
        .copy_in_raw(
            "COPY insights (id, user_id, alert_id, device_id, scene_id, task_id, severity, \
             vlm_status, vlm_summary, vlm_structured_result, failure_reason, model, prompt_tokens, \
             completion_tokens, total_tokens, attempts, snapshot_key, triggered_at, created_at, \
             updated_at, completed_at, attribute_count, attribute_text) FROM STDIN",
        )
        .await?;
    let mut buf = String::with_capacity(4 << 20);
    let mut with_text = 0;
    for i in 0..n {
        let t = users.len() * i / n;
        let user = users[t];
        let (device, scene) = devices[t][r.below(20)];
        let triggered = r.range(start as u64, end as u64) as i64;
        let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            (triggered / 1000) as u64,
            ((triggered % 1000) * 1_000_000) as u32,
        ));
        let severity = if r.chance(0.2) { "critical" } else { "warning" };
        let roll = r.below(100);
        let (status, text, reason, done) = match roll {
            0..=89 => ("completed", Some(summary(&mut r)), None, true),
            90..=96 => (
                "failed",
                None,
                Some("vlm: timed out after 3 attempts"),
                true,
            ),
            _ => ("pending", None, None, false),
        };
        with_text += u64::from(text.is_some());
        let people = if r.chance(0.4) { r.range(1, 6) } else { 0 };
        let attrs = (people > 0).then(|| attribute_text(&mut r, people));
        let null = "\\N".to_owned();
        let opt = |v: Option<String>| v.unwrap_or_else(|| null.clone());
        let (prompt, completion) = (r.range(900, 1400), r.range(60, 220));
        let structured = text.as_ref().map(|_| {
            format!(
                r#"{{"peopleInQueue":{},"staffVisible":{},"concern":"{}"}}"#,
                r.range(1, 25),
                r.chance(0.5),
                if severity == "critical" {
                    "high"
                } else {
                    "low"
                }
            )
        });
        let completed_at = done.then(|| (triggered + r.range(2_000, 20_000) as i64).to_string());
        let row = [
            id.to_string(),
            user.to_string(),
            r.uuid().to_string(),
            device.to_string(),
            scene.to_string(),
            r.uuid().to_string(),
            severity.to_owned(),
            status.to_owned(),
            opt(text.clone()),
            opt(structured),
            opt(reason.map(str::to_owned)),
            opt(text.as_ref().map(|_| "gpt-4o-mini".to_owned())),
            opt(text.as_ref().map(|_| prompt.to_string())),
            opt(text.as_ref().map(|_| completion.to_string())),
            opt(text.as_ref().map(|_| (prompt + completion).to_string())),
            u64::from(status != "pending").to_string(),
            format!("{user}/snapshots/{device}/{triggered}.jpg"),
            triggered.to_string(),
            triggered.to_string(),
            completed_at
                .clone()
                .unwrap_or_else(|| triggered.to_string()),
            opt(completed_at),
            people.to_string(),
            opt(attrs),
        ];
        buf.push_str(&row.join("\t"));
        buf.push('\n');
        if buf.len() > (2 << 20) {
            copy.send(buf.as_bytes()).await?;
            buf.clear();
        }
    }
    copy.send(buf.as_bytes()).await?;
    copy.finish().await?;
    conn.execute("VACUUM ANALYZE insights").await?;
    Ok(with_text)
}

fn table(results: &[ModeResult]) -> String {
    let mut s = String::from("| query | matches (tenant 1) |");
    for r in results {
        let _ = write!(s, " {} p50 / p99 / mean ms |", r.mode);
    }
    s.push_str("\n|---|---|");
    for _ in results {
        s.push_str("---|");
    }
    s.push('\n');
    for (i, q) in QUERIES.iter().enumerate() {
        let what = match q.severity {
            Some(sev) => format!("{} (`{}`, severity {})", q.name, q.q, sev.as_str()),
            None => format!("{} (`{}`)", q.name, q.q),
        };
        let _ = write!(s, "| {what} | {} |", results[0].per_query[i].2);
        for r in results {
            let f = r.per_query[i].1;
            let _ = write!(s, " {:.2} / {:.2} / {:.2} |", f.p50, f.p99, f.mean);
        }
        s.push('\n');
    }
    s.push_str("| **all queries** | |");
    for r in results {
        let f = r.overall;
        let _ = write!(s, " **{:.2} / {:.2} / {:.2}** |", f.p50, f.p99, f.mean);
    }
    s.push('\n');
    s
}

fn as_json(r: &ModeResult) -> serde_json::Value {
    let f = |f: Figures| json!({"p50Ms": f.p50, "p99Ms": f.p99, "meanMs": f.mean, "calls": f.n});
    let per: Vec<_> = r
        .per_query
        .iter()
        .zip(QUERIES)
        .map(|((name, fig, matches), q)| {
            let mut v = f(*fig);
            v["query"] = json!(name);
            v["q"] = json!(q.q);
            v["severity"] = json!(q.severity.map(|s| s.as_str()));
            v["matchesTenant1"] = json!(matches);
            v
        })
        .collect();
    json!({"mode": r.mode, "queries": per, "overall": f(r.overall)})
}

fn server_url(admin: &str, db: &str) -> anyhow::Result<String> {
    let mut url = url::Url::parse(admin)?;
    url.set_path(&format!("/{db}"));
    Ok(url.to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.users > 0 && args.insights >= args.users,
        "--insights >= --users > 0"
    );
    anyhow::ensure!(args.iterations > 0, "--iterations must be positive");
    let db = format!("panoptes_bench_search_{}", std::process::id());
    let mut admin = PgConnection::connect(&args.postgres_url).await?;
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .await?;
    let url = server_url(&args.postgres_url, &db)?;
    let result = run(&args, &db, &url).await;
    if args.keep {
        eprintln!("kept database {db}");
    } else {
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
            )))
            .await?;
    }
    result
}

/// The store as the API has it, on `url` (4 connections).
async fn connect_store(url: &str) -> anyhow::Result<SqlStore> {
    Ok(SqlStore::connect(&StoreOptions {
        url: url.to_owned(),
        max_connections: 4,
        acquire_timeout: Duration::from_secs(30),
    })
    .await?)
}

/// `plan_cache_mode` for new connections to `db` (`None`: the default,
/// `auto`: a statement prepared once may switch to a generic plan after
/// five executions).
async fn set_plan_cache(pool: &PgPool, db: &str, mode: Option<&str>) -> anyhow::Result<()> {
    let sql = match mode {
        Some(m) => format!("ALTER DATABASE {db} SET plan_cache_mode = {m}"),
        None => format!("ALTER DATABASE {db} RESET plan_cache_mode"),
    };
    pool.execute(sqlx::AssertSqlSafe(sql)).await?;
    Ok(())
}

/// The plans of a mode: the page of the rare word (is the index used?);
/// with the index also the count and the page of the common word, and that
/// page's generic plan (what a cached statement would run).
async fn explain_mode(
    url: &str,
    mode: &'static str,
    tsv: &str,
    user: UserId,
    plans: &mut Vec<(&'static str, String, String)>,
) -> anyhow::Result<()> {
    let (rare, common) = (QUERIES[0].q, QUERIES[1].q);
    let mut asked = vec![(Statement::Page, rare, false)];
    if mode == "GIN index" {
        asked.extend([
            (Statement::Count, common, false),
            (Statement::Page, common, false),
            (Statement::Page, common, true),
        ]);
    }
    for (statement, q, generic) in asked {
        let plan = explain(url, tsv, statement, user, q, generic).await?;
        let how = if generic { ", generic plan" } else { "" };
        plans.push((
            mode,
            format!("{statement:?} of `q={q}`{how}, tenant 1"),
            plan,
        ));
    }
    Ok(())
}

async fn run(args: &Args, db: &str, url: &str) -> anyhow::Result<()> {
    let store = connect_store(url).await?;
    store.migrate().await?;
    let pool = PgPoolOptions::new().max_connections(2).connect(url).await?;
    let mut users = Vec::new();
    for i in 0..args.users {
        let u = User {
            id: UserId::new(),
            email: Email::parse(&format!("tenant-{i}@example.com")).map_err(anyhow::Error::msg)?,
            name: None,
            role: Role::User,
            created_at: Utc::now(),
        };
        store.create_user(&u, "x").await?;
        users.push(u.id);
    }
    let t = Instant::now();
    let summaries = load(&pool, &users, args.insights, args.seed).await?;
    let load_s = t.elapsed().as_secs_f64();
    let size: String = sqlx::query_scalar(
        "SELECT pg_size_pretty(pg_total_relation_size('insights')) || ' (GIN ' || \
         pg_size_pretty(pg_relation_size('insights_search_fts')) || ')'",
    )
    .fetch_one(&pool)
    .await?;
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&pool)
        .await?;
    eprintln!(
        "loaded {} insights ({summaries} with a summary) of {} tenants in {load_s:.1} s; table {size}; PostgreSQL {version}",
        args.insights, args.users
    );
    // Mode 1: the API as it is. Mode 2: the same with custom plans only (a
    // database setting, so new connections of a second store take it).
    let mut plans = Vec::new();
    let mut results = Vec::new();
    explain_mode(url, "GIN index", STORED_TSV, users[0], &mut plans).await?;
    results.push(measure_store(&store, &users, "GIN index", args.warmup, args.iterations).await?);
    set_plan_cache(&pool, db, Some("force_custom_plan")).await?;
    let custom = connect_store(url).await?;
    results.push(
        measure_store(
            &custom,
            &users,
            "GIN index, custom plans",
            args.warmup,
            args.iterations,
        )
        .await?,
    );
    custom.close().await;
    set_plan_cache(&pool, db, None).await?;
    // Mode 3: without the index (the first store: its cached plans are
    // invalidated by the DROP).
    pool.execute("DROP INDEX insights_search_fts").await?;
    explain_mode(url, "no index", STORED_TSV, users[0], &mut plans).await?;
    results.push(measure_store(&store, &users, "no index", args.warmup, args.iterations).await?);
    if args.on_the_fly_iterations > 0 {
        let mode = "no index, tsvector computed per row";
        explain_mode(url, mode, COMPUTED_TSV, users[0], &mut plans).await?;
        results.push(
            measure_on_the_fly(
                &pool,
                &users,
                args.warmup.min(3),
                args.on_the_fly_iterations,
            )
            .await?,
        );
    }
    let overall = |mode: &str| results.iter().find(|r| r.mode == mode).map(|r| r.overall);
    let (i, c, u) = (
        overall("GIN index").unwrap(),
        overall("GIN index, custom plans").unwrap(),
        overall("no index").unwrap(),
    );
    println!(
        "## Insight search on PostgreSQL {version}: {} insights of {} tenants, {} calls per query and mode\n",
        args.insights, args.users, args.iterations
    );
    println!("{}", table(&results));
    let ratio = |a: Figures, b: Figures| {
        format!(
            "p50 {:.1}x, p99 {:.1}x, mean {:.1}x",
            a.p50 / b.p50,
            a.p99 / b.p99,
            a.mean / b.mean
        )
    };
    println!("Without the index / with it, all queries: {}.", ratio(u, i));
    println!(
        "Without the index / with it and custom plans: {}.\n",
        ratio(u, c)
    );
    for (mode, label, plan) in &plans {
        println!("EXPLAIN ANALYZE, {mode}, {label}:\n```\n{plan}\n```");
    }
    if let Some(path) = &args.out {
        let ratio = |a: Figures, b: Figures| json!({"p50": a.p50 / b.p50, "p99": a.p99 / b.p99, "mean": a.mean / b.mean});
        let out = json!({
            "postgres": version,
            "insights": args.insights,
            "withSummary": summaries,
            "tenants": args.users,
            "iterations": args.iterations,
            "warmup": args.warmup,
            "seed": args.seed,
            "loadSeconds": load_s,
            "tableSize": size,
            "modes": results.iter().map(as_json).collect::<Vec<_>>(),
            "ratioNoIndexToIndex": ratio(u, i),
            "ratioNoIndexToIndexCustomPlans": ratio(u, c),
            "explain": plans.iter().map(|(m, l, p)| json!({"mode": m, "statement": l, "plan": p})).collect::<Vec<_>>(),
        });
        std::fs::write(path, serde_json::to_string_pretty(&out)?)?;
    }
    store.close().await;
    pool.close().await;
    Ok(())
}
