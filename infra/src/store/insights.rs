//! Insights: one row per alert (the unique `alert_id` makes a second insert
//! a no-op), final once completed or failed (the transitions update only a
//! pending row), and listed with full text over the VLM summary through each
//! backend's own index: a generated `tsvector` with a GIN index on
//! PostgreSQL, an FTS5 table kept in step by triggers on SQLite. Both match
//! whole words, case-insensitively, without stemming.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use panoptes_shared::Result;
use panoptes_shared::config::StoreBackend;
use panoptes_shared::domain::alert::Severity;
use panoptes_shared::domain::insight::{Insight, VlmResult, VlmStatus};
use panoptes_shared::domain::page::{Page, PageRequest};
use panoptes_shared::ids::{InsightId, UserId};
use panoptes_shared::ports::{InsightFilter, InsightRepo};
use sqlx::any::AnyRow;

use super::rows::{corrupt, count, enum_col, get, id, ms, opt_ms, opt_time, time, to_json};
use super::{SqlStore, Within};

macro_rules! columns {
    () => {
        "SELECT id, user_id, alert_id, device_id, scene_id, task_id, severity, vlm_status, \
         vlm_summary, vlm_structured_result, failure_reason, model, prompt_tokens, completion_tokens, \
         total_tokens, attempts, snapshot_key, triggered_at, created_at, updated_at, completed_at, \
         attribute_count"
    };
}

/// The list filters other than `q`; `''` (or `-1`) for "any".
macro_rules! filters {
    () => {
        " FROM insights WHERE user_id = $1 AND (device_id = $2 OR $2 = '') \
          AND (scene_id = $3 OR $3 = '') AND (severity = $4 OR $4 = '') \
          AND (vlm_status = $5 OR $5 = '') AND triggered_at >= $6 AND triggered_at <= $7 \
          AND ($8 < 0 OR (CASE WHEN vlm_summary IS NULL THEN 0 ELSE 1 END) = $8) \
          AND ($9 < 0 OR (CASE WHEN attribute_count > 0 THEN 1 ELSE 0 END) = $9)"
    };
}

/// The count and the page of a list, with `$10` (the terms) matched by `m`.
macro_rules! list_sql {
    ($m:literal) => {
        (
            concat!("SELECT COUNT(*)", filters!(), $m),
            concat!(
                columns!(),
                filters!(),
                $m,
                " ORDER BY triggered_at DESC, id DESC LIMIT $11 OFFSET $12"
            ),
        )
    };
}

/// No terms (`$10` is `''`).
const ANY_TEXT: (&str, &str) = list_sql!(" AND $10 = ''");
/// PostgreSQL: the words (built by [`pg_query`]) in the summary or the
/// attribute words, on the GIN index.
const PG_MATCH: (&str, &str) = list_sql!(" AND search_tsv @@ to_tsquery('simple', $10)");
/// SQLite: the FTS5 query built by [`fts5_query`].
const SQLITE_MATCH: (&str, &str) =
    list_sql!(" AND seq IN (SELECT rowid FROM insights_fts WHERE insights_fts MATCH $10)");

/// The words of the user's terms: runs of letters and digits. Everything
/// else (quotes, `*`, parentheses, `-`, `:`) separates words, so no input
/// reaches either full-text parser as syntax.
fn words(q: &str) -> Vec<&str> {
    q.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect()
}

/// An FTS5 query that requires every word (or any, with `any`), each a
/// quoted string (so `AND`, `OR`, `NEAR` and column names are words, not
/// operators).
fn fts5_query(words: &[&str], any: bool) -> String {
    words
        .iter()
        .map(|w| format!("\"{w}\""))
        .collect::<Vec<_>>()
        .join(if any { " OR " } else { " " })
}

/// A `to_tsquery` text over plain words (letters and digits only, so
/// nothing in them is tsquery syntax): `a & b`, or `a | b` with `any`.
fn pg_query(words: &[&str], any: bool) -> String {
    words.join(if any { " | " } else { " & " })
}

fn u64_col(r: &AnyRow, column: &str) -> Result<Option<u64>> {
    let n: Option<i64> = get(r, column)?;
    n.map(|n| u64::try_from(n).map_err(|e| corrupt(column, e)))
        .transpose()
}

fn opt_i64(n: Option<u64>) -> Option<i64> {
    n.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

fn opt_id<T: std::str::FromStr>(r: &AnyRow, column: &str) -> Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    let s: Option<String> = get(r, column)?;
    s.map(|s| s.parse().map_err(|e| corrupt(column, e)))
        .transpose()
}

fn insight(r: &AnyRow) -> Result<Insight> {
    let structured: Option<String> = get(r, "vlm_structured_result")?;
    let attempts: i64 = get(r, "attempts")?;
    Ok(Insight {
        id: id(r, "id")?,
        user_id: id(r, "user_id")?,
        alert_id: id(r, "alert_id")?,
        device_id: id(r, "device_id")?,
        scene_id: id(r, "scene_id")?,
        task_id: opt_id(r, "task_id")?,
        severity: enum_col(r, "severity", Severity::parse)?,
        vlm_status: enum_col(r, "vlm_status", VlmStatus::parse)?,
        vlm_summary: get(r, "vlm_summary")?,
        vlm_structured_result: structured
            .map(|s| serde_json::from_str(&s).map_err(|e| corrupt("vlm_structured_result", e)))
            .transpose()?,
        failure_reason: get(r, "failure_reason")?,
        model: get(r, "model")?,
        prompt_tokens: u64_col(r, "prompt_tokens")?,
        completion_tokens: u64_col(r, "completion_tokens")?,
        total_tokens: u64_col(r, "total_tokens")?,
        attempts: u32::try_from(attempts).map_err(|e| corrupt("attempts", e))?,
        snapshot_key: get(r, "snapshot_key")?,
        triggered_at: time(r, "triggered_at")?,
        created_at: time(r, "created_at")?,
        updated_at: time(r, "updated_at")?,
        completed_at: opt_time(r, "completed_at")?,
        attribute_count: u64_col(r, "attribute_count")?.unwrap_or(0),
    })
}

/// Inserts `i` unless its alert has an insight; whether it did.
pub(super) async fn insert_insight(
    conn: &mut sqlx::AnyConnection,
    i: &Insight,
    deadline: std::time::Duration,
) -> Result<bool> {
    let structured = i.vlm_structured_result.as_ref().map(to_json).transpose()?;
    let done = sqlx::query(
        "INSERT INTO insights (id, user_id, alert_id, device_id, scene_id, task_id, severity, \
         vlm_status, vlm_summary, vlm_structured_result, failure_reason, model, prompt_tokens, \
         completion_tokens, total_tokens, attempts, snapshot_key, triggered_at, created_at, \
         updated_at, completed_at, attribute_count) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
         $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22) \
         ON CONFLICT (alert_id) DO NOTHING",
    )
    .bind(i.id.to_string())
    .bind(i.user_id.to_string())
    .bind(i.alert_id.to_string())
    .bind(i.device_id.to_string())
    .bind(i.scene_id.to_string())
    .bind(i.task_id.map(|t| t.to_string()))
    .bind(i.severity.as_str())
    .bind(i.vlm_status.as_str())
    .bind(i.vlm_summary.clone())
    .bind(structured)
    .bind(i.failure_reason.clone())
    .bind(i.model.clone())
    .bind(opt_i64(i.prompt_tokens))
    .bind(opt_i64(i.completion_tokens))
    .bind(opt_i64(i.total_tokens))
    .bind(i64::from(i.attempts))
    .bind(i.snapshot_key.clone())
    .bind(ms(i.triggered_at))
    .bind(ms(i.created_at))
    .bind(ms(i.updated_at))
    .bind(opt_ms(i.completed_at))
    .bind(i64::try_from(i.attribute_count).unwrap_or(i64::MAX))
    .execute(conn)
    .within(deadline)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[async_trait]
impl InsightRepo for SqlStore {
    async fn insert_insight_for_alert(&self, i: &Insight) -> Result<bool> {
        let mut conn = self.pool.acquire().within(self.deadline).await?;
        insert_insight(&mut conn, i, self.deadline).await
    }

    async fn get_insight(&self, user: UserId, id: InsightId) -> Result<Option<Insight>> {
        let row = sqlx::query(concat!(
            columns!(),
            " FROM insights WHERE user_id = $1 AND id = $2"
        ))
        .bind(user.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .within(self.deadline)
        .await?;
        row.as_ref().map(insight).transpose()
    }

    async fn complete_insight(
        &self,
        user: UserId,
        id: InsightId,
        r: &VlmResult,
        attempts: u32,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let structured = r.structured.as_ref().map(to_json).transpose()?;
        let done = sqlx::query(
            "UPDATE insights SET vlm_status = 'completed', vlm_summary = $1, vlm_structured_result = $2, \
             model = $3, prompt_tokens = $4, completion_tokens = $5, total_tokens = $6, attempts = $7, \
             updated_at = $8, completed_at = $8 \
             WHERE user_id = $9 AND id = $10 AND vlm_status = 'pending'",
        )
        .bind(r.summary.clone())
        .bind(structured)
        .bind(r.model.clone())
        .bind(opt_i64(r.prompt_tokens))
        .bind(opt_i64(r.completion_tokens))
        .bind(opt_i64(r.total_tokens))
        .bind(i64::from(attempts))
        .bind(ms(at))
        .bind(user.to_string())
        .bind(id.to_string())
        .execute(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn fail_insight(
        &self,
        user: UserId,
        id: InsightId,
        reason: &str,
        attempts: u32,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE insights SET vlm_status = 'failed', failure_reason = $1, attempts = $2, \
             updated_at = $3, completed_at = $3 \
             WHERE user_id = $4 AND id = $5 AND vlm_status = 'pending'",
        )
        .bind(reason.to_owned())
        .bind(i64::from(attempts))
        .bind(ms(at))
        .bind(user.to_string())
        .bind(id.to_string())
        .execute(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn attach_insight_attributes(
        &self,
        user: UserId,
        id: InsightId,
        count: u64,
        text: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE insights SET attribute_count = $1, attribute_text = $2 \
             WHERE user_id = $3 AND id = $4",
        )
        .bind(i64::try_from(count).unwrap_or(i64::MAX))
        .bind((!text.is_empty()).then(|| text.to_owned()))
        .bind(user.to_string())
        .bind(id.to_string())
        .execute(&self.pool)
        .within(self.deadline)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn stale_pending_insights(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Insight>> {
        let rows = sqlx::query(concat!(
            columns!(),
            " FROM insights WHERE vlm_status = 'pending' AND updated_at < $1 \
              ORDER BY updated_at LIMIT $2"
        ))
        .bind(ms(before))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .within(self.deadline)
        .await?;
        let mut stale = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut i = insight(row)?;
            let touched = sqlx::query(
                "UPDATE insights SET updated_at = $1 \
                 WHERE id = $2 AND vlm_status = 'pending' AND updated_at = $3",
            )
            .bind(ms(now))
            .bind(i.id.to_string())
            .bind(ms(i.updated_at))
            .execute(&self.pool)
            .within(self.deadline)
            .await?;
            // Another node's sweep took it.
            if touched.rows_affected() == 1 {
                i.updated_at = now;
                stale.push(i);
            }
        }
        Ok(stale)
    }

    async fn list_insights(
        &self,
        user: UserId,
        f: &InsightFilter,
        page: PageRequest,
    ) -> Result<Page<Insight>> {
        let terms = f.q.as_deref().map(words);
        if terms.as_ref().is_some_and(Vec::is_empty) {
            // Terms without a word: nothing can match them.
            return Ok(Page {
                items: Vec::new(),
                total: 0,
                request: page,
            });
        }
        // A PostgreSQL search is planned with its words on every call (an
        // unnamed statement): the generic plan PostgreSQL adopts for a cached
        // statement after five calls cannot tell a rare word (the GIN index)
        // from a common one (the tenant's newest rows first). At 100,000
        // insights it took 3x as long for a common word, 2x over the mix
        // (tests/bench/search.sh); planning costs a fraction of a millisecond.
        let cached = terms.is_none() || self.backend != StoreBackend::Postgres;
        let (q, matching) = match (terms, self.backend) {
            (None, _) => (String::new(), ANY_TEXT),
            (Some(w), StoreBackend::Postgres) => (pg_query(&w, f.any_word), PG_MATCH),
            (Some(w), StoreBackend::Sqlite) => (fts5_query(&w, f.any_word), SQLITE_MATCH),
        };
        let (from, to) = f.range.millis();
        let text = |v: Option<String>| v.unwrap_or_default();
        let binds = (
            text(f.device.map(|d| d.to_string())),
            text(f.scene.map(|s| s.to_string())),
            text(f.severity.map(|s| s.as_str().to_owned())),
            text(f.vlm_status.map(|s| s.as_str().to_owned())),
            f.has_vlm_summary.map_or(-1_i64, i64::from),
            f.has_attributes.map_or(-1_i64, i64::from),
        );
        // The list's filters `$1`..`$10`, the same for the count and the page.
        let filtered = |sql| {
            sqlx::query(sql)
                .persistent(cached)
                .bind(user.to_string())
                .bind(binds.0.clone())
                .bind(binds.1.clone())
                .bind(binds.2.clone())
                .bind(binds.3.clone())
                .bind(from)
                .bind(to)
                .bind(binds.4)
                .bind(binds.5)
                .bind(q.clone())
        };
        let total = filtered(matching.0)
            .fetch_one(&self.pool)
            .within(self.deadline)
            .await?;
        let rows = filtered(matching.1)
            .bind(i64::from(page.limit))
            .bind(page.offset())
            .fetch_all(&self.pool)
            .within(self.deadline)
            .await?;
        Ok(Page {
            items: rows.iter().map(insight).collect::<Result<_>>()?,
            total: count(&total)?,
            request: page,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts_syntax_in_the_terms_is_only_a_separator() {
        assert_eq!(
            words(r#"man "AND (red* coat)"#),
            ["man", "AND", "red", "coat"]
        );
        assert_eq!(fts5_query(&words("NEAR(a b)"), false), r#""NEAR" "a" "b""#);
        assert_eq!(fts5_query(&words("a b"), true), r#""a" OR "b""#);
        assert_eq!(pg_query(&words("a:* !b"), false), "a & b");
        assert_eq!(pg_query(&words("a b"), true), "a | b");
        assert!(words(r#"" * ( ) -:"#).is_empty());
    }
}
