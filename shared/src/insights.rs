//! What the insight pipeline asks the VLM, and how a plain-language search
//! question becomes insight filters. HTTP-free: the notify role builds the
//! insight request from the alert and its context, the gateway builds the
//! search request; both go through the [`VlmProvider`](crate::ports::VlmProvider)
//! port.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::domain::alert::{Alert, Severity};
use crate::domain::attribute::{AttributeRecord, ColorName};
use crate::domain::insight::{Insight, VlmStatus};
use crate::domain::metrics_history::{SceneSnapshot, TimeRange};
use crate::domain::scene::Scene;
use crate::ports::store::{AttributeFilter, InsightFilter};
use crate::ports::vlm::VlmRequest;

/// The people "in view" of an insight: attributes observed on the alert's
/// task during this long before the alert fired.
pub const ATTRIBUTE_WINDOW_SECONDS: i64 = 60;

/// The attribute records linked to an insight: its task's, in the window
/// before the firing.
pub fn attributes_in_view(insight: &Insight) -> AttributeFilter {
    let end = insight.triggered_at;
    AttributeFilter {
        device: Some(insight.device_id),
        task: insight.task_id,
        range: TimeRange {
            start: Some(end - Duration::seconds(ATTRIBUTE_WINDOW_SECONDS)),
            end: Some(end),
        },
        ..AttributeFilter::default()
    }
}

/// The words full-text search matches for the people in view: each
/// record's, the latest description of each track once.
pub fn attribute_words(records: &[AttributeRecord]) -> String {
    let mut seen = std::collections::HashSet::new();
    records
        .iter()
        .filter(|r| seen.insert(r.track_id.clone()))
        .map(AttributeRecord::search_text)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The answer the VLM gives about an alert (OpenAI strict structured
/// output: every property required, no others).
pub fn insight_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["summary", "peopleInQueue", "queueCondition", "observations", "recommendedAction", "people"],
        "properties": {
            "summary": {
                "type": "string",
                "description": "One or two sentences: what is happening at the queue and why it matters."
            },
            "peopleInQueue": {
                "type": ["integer", "null"],
                "description": "People you can see waiting in the queue zone, or null if you cannot tell."
            },
            "queueCondition": {
                "type": "string",
                "enum": ["normal", "busy", "congested", "unclear"]
            },
            "observations": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Short factual observations from the image (at most 5)."
            },
            "recommendedAction": {
                "type": "string",
                "description": "What staff should do now, in one sentence."
            },
            "people": {
                "type": "array",
                "description": "Each clearly visible person at the queue or checkout (at most 10): what they wear and do, never who they are.",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["zone", "upperClothing", "lowerClothing", "carrying", "activity"],
                    "properties": {
                        "zone": {"type": "string", "enum": ["queue", "checkout", "other"]},
                        "upperClothing": {"type": "string", "description": "e.g. red hooded jacket"},
                        "lowerClothing": {"type": "string", "description": "e.g. blue jeans"},
                        "carrying": {"type": ["string", "null"], "description": "e.g. shopping basket, or null"},
                        "activity": {"type": "string", "description": "e.g. waiting, paying, leaving"}
                    }
                }
            }
        }
    })
}

pub const INSIGHT_SCHEMA_NAME: &str = "queue_alert_insight";

const INSIGHT_PROMPT: &str = "You are a retail operations analyst looking at a still image \
from a store camera when a queue alert fired. The text gives the alert, the scene's zones and \
the recent queue metrics measured by the platform. Describe what the image shows at the queue \
and the checkout, say whether the measured numbers look right, and recommend one action. Be \
factual and brief; do not identify people, only describe what they wear or do.";

/// What the VLM is told about the alert besides the image.
pub struct InsightContext<'a> {
    pub alert: &'a Alert,
    pub scene: Option<&'a Scene>,
    pub device_name: Option<&'a str>,
    /// Recent per-frame snapshots of the scene before the firing, newest first.
    pub history: &'a [SceneSnapshot],
    /// The people in view (attributes), newest first.
    pub people: &'a [AttributeRecord],
}

impl InsightContext<'_> {
    /// The context as text (no customer secrets: names, numbers, times).
    pub fn text(&self) -> String {
        let a = self.alert;
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line(format!(
            "Alert \"{}\" ({}) fired at {}: {} {} {} (measured {}).",
            a.rule_name,
            a.severity.as_str(),
            a.triggered_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            a.metric_path,
            a.operator.as_str(),
            a.threshold,
            a.value
        ));
        line(format!(
            "The condition has held since {}.",
            a.breach_started_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
        if let Some(name) = self.device_name {
            line(format!("Camera: {name}."));
        }
        if let Some(s) = self.scene {
            line(format!(
                "Scene: {} (queue analysis). The queue zone is where people wait; the checkout \
                 zone is where they are served.",
                s.name
            ));
        }
        if !self.history.is_empty() {
            line("Recent measurements (newest first):".into());
            for h in self.history.iter().take(10) {
                line(format!(
                    "- {}: {} in queue, {} in service",
                    h.window_end
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    h.current.in_queue,
                    h.current.in_service
                ));
            }
        }
        if !self.people.is_empty() {
            line("People seen (clothing colours from the platform's attribute detector):".into());
            let mut seen = std::collections::HashSet::new();
            for p in self
                .people
                .iter()
                .filter(|p| seen.insert(p.track_id.clone()))
            {
                line(format!(
                    "- track {}: {} top, {} bottom",
                    p.track_id,
                    p.attributes.upper_color.as_str(),
                    p.attributes.lower_color.as_str()
                ));
            }
        }
        out
    }
}

/// The request for one insight: `images` are the alert's snapshot(s).
pub fn insight_request(
    insight: &Insight,
    context: &InsightContext<'_>,
    images: Vec<Vec<u8>>,
) -> VlmRequest {
    VlmRequest {
        request_id: insight.id.to_string(),
        system_prompt: INSIGHT_PROMPT.into(),
        user_text: context.text(),
        images,
        schema_name: INSIGHT_SCHEMA_NAME.into(),
        schema: insight_schema(),
    }
}

/// How a search question was read: filters plus full-text terms, echoed
/// back to the caller.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchPlan {
    /// Words to match in summaries and attribute words.
    pub terms: Vec<String>,
    /// `true`: any term may match (plain fallback); `false`: all must.
    pub any_term: bool,
    pub severity: Option<Severity>,
    pub vlm_status: Option<VlmStatus>,
    /// A camera named in the question, as the model wrote it.
    pub device_name: Option<String>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub has_attributes: Option<bool>,
    pub upper_color: Option<ColorName>,
    pub lower_color: Option<ColorName>,
}

impl SearchPlan {
    /// The insight filter this plan means (colours become terms: the
    /// attribute words are in the same index as the summaries).
    pub fn filter(&self) -> InsightFilter {
        let mut terms = self.terms.clone();
        for c in [self.upper_color, self.lower_color].into_iter().flatten() {
            if !terms.iter().any(|t| t == c.as_str()) {
                terms.push(c.as_str().to_owned());
            }
        }
        InsightFilter {
            q: (!terms.is_empty()).then(|| terms.join(" ")),
            any_word: self.any_term,
            severity: self.severity,
            vlm_status: self.vlm_status,
            range: TimeRange {
                start: self.start,
                end: self.end,
            },
            has_attributes: self.has_attributes,
            ..InsightFilter::default()
        }
    }
}

/// Words that carry no meaning for search.
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "all", "alert", "alerts", "am", "an", "and", "any", "are", "at", "be",
    "been", "before", "by", "can", "did", "do", "does", "during", "find", "for", "from", "get",
    "had", "has", "have", "how", "i", "in", "insight", "insights", "is", "it", "its", "list", "me",
    "my", "of", "on", "or", "our", "show", "since", "some", "that", "the", "their", "there",
    "these", "this", "those", "to", "was", "were", "what", "when", "where", "which", "who", "with",
    "wearing", "wore", "you",
];

/// The plan without a model: the question's content words, any of which
/// may match.
pub fn fallback_plan(question: &str) -> SearchPlan {
    let mut terms: Vec<String> = Vec::new();
    for w in question
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
    {
        if !STOP_WORDS.contains(&w.as_str()) && !terms.contains(&w) {
            terms.push(w);
        }
    }
    SearchPlan {
        terms,
        any_term: true,
        ..SearchPlan::default()
    }
}

pub const SEARCH_SCHEMA_NAME: &str = "insight_search_filters";

/// What the model answers about a question.
pub fn search_schema() -> Value {
    let colors: Vec<Value> = ColorName::ALL
        .iter()
        .map(|c| json!(c.as_str()))
        .chain([Value::Null])
        .collect();
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["terms", "severity", "vlmStatus", "deviceName", "startDate", "endDate",
                     "hasAttributes", "upperColor", "lowerColor"],
        "properties": {
            "terms": {
                "type": "array", "items": {"type": "string"},
                "description": "Single words that should appear in the insight's summary (no stop words, no colours, no dates)."
            },
            "severity": {"type": ["string", "null"], "enum": ["warning", "critical", null]},
            "vlmStatus": {"type": ["string", "null"], "enum": ["pending", "completed", "failed", null]},
            "deviceName": {"type": ["string", "null"], "description": "A camera name from the list, or null."},
            "startDate": {"type": ["string", "null"], "description": "RFC 3339 UTC start of the time asked about, or null."},
            "endDate": {"type": ["string", "null"], "description": "RFC 3339 UTC end of the time asked about, or null."},
            "hasAttributes": {"type": ["boolean", "null"], "description": "true when the question is about what people wore."},
            "upperColor": {"type": ["string", "null"], "enum": colors.clone()},
            "lowerColor": {"type": ["string", "null"], "enum": colors}
        }
    })
}

/// The request that turns `question` into a [`SearchPlan`]; `cameras` are
/// the caller's device names (so the model can name one exactly).
pub fn search_request(
    request_id: String,
    question: &str,
    now: DateTime<Utc>,
    cameras: &[String],
) -> VlmRequest {
    let system = format!(
        "You turn a question about stored queue-alert insights into search filters. Insights \
         have a VLM summary of a camera image, a severity (warning or critical), a status, a \
         camera and a time; the people in them have upper and lower clothing colours ({}). The \
         time now is {}. Use null for anything the question does not constrain.",
        ColorName::ALL
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let mut user = format!("Question: {question}\n");
    if !cameras.is_empty() {
        user.push_str("Cameras: ");
        user.push_str(&cameras.join("; "));
        user.push('\n');
    }
    VlmRequest {
        request_id,
        system_prompt: system,
        user_text: user,
        images: Vec::new(),
        schema_name: SEARCH_SCHEMA_NAME.into(),
        schema: search_schema(),
    }
}

/// The plan in a model's answer: unknown or unusable values are dropped
/// (a filter the model made up must not hide results), terms reduced to
/// plain words.
pub fn plan_from_answer(answer: &Value) -> SearchPlan {
    let text = |k: &str| answer.get(k).and_then(Value::as_str);
    let time = |k: &str| {
        text(k)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let mut terms: Vec<String> = Vec::new();
    for t in answer
        .get("terms")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        for w in t
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
        {
            if !STOP_WORDS.contains(&w.as_str()) && !terms.contains(&w) && terms.len() < 8 {
                terms.push(w);
            }
        }
    }
    let (mut start, mut end) = (time("startDate"), time("endDate"));
    if let (Some(s), Some(e)) = (start, end)
        && s > e
    {
        (start, end) = (None, None);
    }
    SearchPlan {
        terms,
        any_term: false,
        severity: text("severity").and_then(Severity::parse),
        vlm_status: text("vlmStatus").and_then(VlmStatus::parse),
        device_name: text("deviceName")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        start,
        end,
        has_attributes: answer.get("hasAttributes").and_then(Value::as_bool),
        upper_color: text("upperColor").and_then(ColorName::parse),
        lower_color: text("lowerColor").and_then(ColorName::parse),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_keeps_content_words_once() {
        let p = fallback_plan("Show me alerts where someone wore a RED jacket, red!");
        assert_eq!(p.terms, ["someone", "red", "jacket"]);
        assert!(p.any_term);
        assert_eq!(p.filter().q.as_deref(), Some("someone red jacket"));
        assert!(fallback_plan("the of and").terms.is_empty());
    }

    #[test]
    fn a_models_plan_drops_what_it_made_up() {
        let plan = plan_from_answer(&json!({
            "terms": ["long queue", "Counter-3"],
            "severity": "critical",
            "vlmStatus": "done",
            "deviceName": "  ",
            "startDate": "2026-12-01T00:00:00Z",
            "endDate": "not a date",
            "hasAttributes": true,
            "upperColor": "red",
            "lowerColor": "plaid"
        }));
        assert_eq!(plan.terms, ["long", "queue", "counter", "3"]);
        assert_eq!(plan.severity, Some(Severity::Critical));
        assert_eq!(plan.vlm_status, None);
        assert_eq!(plan.device_name, None);
        assert!(plan.start.is_some() && plan.end.is_none());
        assert_eq!(plan.upper_color, Some(ColorName::Red));
        assert_eq!(plan.lower_color, None);
        let f = plan.filter();
        assert_eq!(f.q.as_deref(), Some("long queue counter 3 red"));
        assert!(!f.any_word);
    }

    #[test]
    fn reversed_dates_are_dropped() {
        let plan = plan_from_answer(&json!({
            "startDate": "2026-12-02T00:00:00Z", "endDate": "2026-12-01T00:00:00Z"
        }));
        assert_eq!((plan.start, plan.end), (None, None));
    }
}
