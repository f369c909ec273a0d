//! What a client sends when it comes back, checked before anything is looked
//! up: where to resume (`Last-Event-ID`, or `lastEventId` for a first connect)
//! and which of its streams the new one replaces (`Stream-Token`, or
//! `streamToken`). The header wins when both are sent.
//!
//! A value that cannot be one this API sent is refused with 400
//! `VALIDATION_ERROR` naming the field (a browser only ever sends back what it
//! was sent, so this is a client bug worth surfacing, not something to guess
//! around): an event id that is not `<taskId>-<epochMillis>`, or is more than
//! [`MAX_AHEAD_MS`] ahead of this node's clock (resuming there would skip
//! every live event until then); a token that is not 43 base64url characters.
//! An empty value counts as absent. A well-formed token that names no held
//! slot (already used, lapsed, or invented) is not an error: the stream opens
//! as a new one, within the limit.

use panoptes_shared::ports::StreamToken;
use panoptes_shared::ports::bus::parse_event_id;
use panoptes_shared::{Error, Result};

/// How far ahead of this node's clock an event id may be (clock skew between
/// nodes and Redis; ids are stamped by the bus).
pub const MAX_AHEAD_MS: u64 = 5 * 60 * 1000;

/// Longest event id looked at (`<uuid>-<u64>` is at most 57 characters).
const MAX_ID_LEN: usize = 64;

/// A validated reconnect.
#[derive(Debug, Default)]
pub struct Reconnect {
    /// The canonical `<taskId>-<epochMillis>` to resume after.
    pub last_event_id: Option<String>,
    /// The token of the stream this one replaces.
    pub replaces: Option<StreamToken>,
}

impl Reconnect {
    /// Parse what the client sent; `now_ms` is this node's clock.
    pub fn parse(
        id_header: Option<String>,
        id_query: Option<String>,
        token_header: Option<String>,
        token_query: Option<String>,
        now_ms: u64,
    ) -> Result<Self> {
        let last_event_id = match pick(id_header, id_query, ("Last-Event-ID", "lastEventId")) {
            Some((field, raw)) => Some(event_id(field, &raw, now_ms)?),
            None => None,
        };
        let replaces = match pick(token_header, token_query, ("Stream-Token", "streamToken")) {
            Some((field, raw)) => Some(StreamToken::parse(field, &raw)?),
            None => None,
        };
        Ok(Self {
            last_event_id,
            replaces,
        })
    }
}

/// The header's value if it has one, else the query's, with its field name.
fn pick(
    header: Option<String>,
    query: Option<String>,
    names: (&'static str, &'static str),
) -> Option<(&'static str, String)> {
    let given = |v: Option<String>| {
        v.map(|s| s.trim().to_owned())
            .filter(|s: &String| !s.is_empty())
    };
    given(header)
        .map(|v| (names.0, v))
        .or_else(|| given(query).map(|v| (names.1, v)))
}

fn event_id(field: &str, raw: &str, now_ms: u64) -> Result<String> {
    let parsed = (raw.len() <= MAX_ID_LEN)
        .then(|| parse_event_id(raw))
        .flatten();
    let Some((task, ms)) = parsed else {
        return Err(Error::validation(
            field,
            "must be the id of an event this API sent: `<taskId>-<epochMillis>`",
        ));
    };
    if ms > now_ms.saturating_add(MAX_AHEAD_MS) {
        return Err(Error::validation(
            field,
            "is an event id from the future: send the id of the last event received",
        ));
    }
    Ok(format!("{task}-{ms}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn field_of(r: Result<Reconnect>) -> String {
        match r {
            Err(Error::Validation(e)) => e.field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn ids_and_tokens_this_api_sent_are_accepted_and_the_header_wins() {
        let task = uuid::Uuid::new_v4();
        let token = StreamToken::generate();
        let r = Reconnect::parse(
            Some(format!(" {task}-{NOW} ")),
            Some("junk".into()),
            None,
            Some(token.expose().to_owned()),
            NOW,
        )
        .unwrap();
        assert_eq!(r.last_event_id, Some(format!("{task}-{NOW}")));
        assert_eq!(r.replaces.unwrap().lease(), token.lease());
        let empty = Reconnect::parse(Some(" ".into()), None, Some(String::new()), None, NOW);
        let empty = empty.unwrap();
        assert!(empty.last_event_id.is_none() && empty.replaces.is_none());
    }

    #[test]
    fn malformed_or_future_ids_and_bad_tokens_name_their_field() {
        let task = uuid::Uuid::new_v4();
        for (id, field) in [
            (format!("{task}-18446744073709551615"), "Last-Event-ID"),
            (
                format!("{task}-{}", NOW + MAX_AHEAD_MS + 1),
                "Last-Event-ID",
            ),
            (format!("{task}-99999999999999999999999"), "Last-Event-ID"),
            ("not-an-id".to_owned(), "Last-Event-ID"),
            (format!("{task}--1"), "Last-Event-ID"),
            (format!("{task}-{NOW}{}", "0".repeat(80)), "Last-Event-ID"),
        ] {
            assert_eq!(
                field_of(Reconnect::parse(Some(id), None, None, None, NOW)),
                field
            );
        }
        assert_eq!(
            field_of(Reconnect::parse(None, Some("x-1".into()), None, None, NOW)),
            "lastEventId"
        );
        assert_eq!(
            field_of(Reconnect::parse(None, None, Some("nope".into()), None, NOW)),
            "Stream-Token"
        );
        assert_eq!(
            field_of(Reconnect::parse(None, None, None, Some("nope".into()), NOW)),
            "streamToken"
        );
        let ahead = format!("{task}-{}", NOW + MAX_AHEAD_MS);
        assert!(Reconnect::parse(Some(ahead), None, None, None, NOW).is_ok());
    }
}
