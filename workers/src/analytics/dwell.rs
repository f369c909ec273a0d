//! Zone membership with debounce: a tracked person counts as in a zone once
//! their box's bottom-centre point (where they stand) has been inside it for
//! the scene's `entryThresholdSeconds`, and stops counting once it has been
//! outside for `exitThresholdSeconds`. Entering is dated from the first frame
//! inside, leaving from the first frame outside, so a completed visit's wait
//! is the time actually spent in the zone.

use std::collections::HashMap;

use panoptes_shared::domain::detection::BoundingBox;
use panoptes_shared::domain::polygon::{Point, Polygon};

/// Where a person stands: the middle of the bottom edge of their box.
pub fn footpoint(b: &BoundingBox) -> Point {
    Point {
        x: f64::from(b.x + b.width / 2.0),
        y: f64::from(b.y + b.height),
    }
}

/// A change of membership, for arrivals, departures and waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneEvent {
    Entered {
        track: u64,
        at_ms: u64,
    },
    Left {
        track: u64,
        entered_ms: u64,
        left_ms: u64,
    },
}

#[derive(Debug, Clone, Copy, Default)]
struct Stay {
    /// First frame of the current run inside (before membership is confirmed).
    inside_since: Option<u64>,
    /// Confirmed member since this time (the first frame inside).
    member_since: Option<u64>,
    /// First frame of the current run outside, while a member.
    outside_since: Option<u64>,
    last_seen_ms: u64,
}

pub struct Dwell {
    zone: Polygon,
    entry_ms: u64,
    exit_ms: u64,
    stays: HashMap<u64, Stay>,
}

impl Dwell {
    pub fn new(zone: Polygon, entry_ms: u64, exit_ms: u64) -> Self {
        Self {
            zone,
            entry_ms,
            exit_ms,
            stays: HashMap::new(),
        }
    }

    pub fn is_member(&self, track: u64) -> bool {
        self.stays
            .get(&track)
            .is_some_and(|s| s.member_since.is_some())
    }

    pub fn members(&self) -> usize {
        self.stays
            .values()
            .filter(|s| s.member_since.is_some())
            .count()
    }

    /// One frame: where each visible track stands. Tracks not seen for
    /// `gone_after_ms` (the tracker forgot them) leave as of their last frame.
    pub fn update(
        &mut self,
        seen: &[(u64, BoundingBox)],
        at_ms: u64,
        gone_after_ms: u64,
    ) -> Vec<ZoneEvent> {
        let mut events = Vec::new();
        for (track, b) in seen {
            let inside = self.zone.contains(footpoint(b));
            let s = self.stays.entry(*track).or_default();
            s.last_seen_ms = at_ms;
            if inside {
                s.outside_since = None;
                if s.member_since.is_none() {
                    let since = *s.inside_since.get_or_insert(at_ms);
                    if at_ms - since >= self.entry_ms {
                        s.member_since = Some(since);
                        events.push(ZoneEvent::Entered {
                            track: *track,
                            at_ms: since,
                        });
                    }
                }
            } else {
                s.inside_since = None;
                if let Some(entered) = s.member_since {
                    let since = *s.outside_since.get_or_insert(at_ms);
                    if at_ms - since >= self.exit_ms {
                        *s = Stay {
                            last_seen_ms: at_ms,
                            ..Stay::default()
                        };
                        events.push(ZoneEvent::Left {
                            track: *track,
                            entered_ms: entered,
                            left_ms: since,
                        });
                    }
                }
            }
        }
        let gone: Vec<u64> = self
            .stays
            .iter()
            .filter(|(_, s)| at_ms.saturating_sub(s.last_seen_ms) > gone_after_ms)
            .map(|(t, _)| *t)
            .collect();
        for track in gone {
            if let Some(Stay {
                member_since: Some(entered),
                outside_since,
                last_seen_ms,
                ..
            }) = self.stays.remove(&track)
            {
                let left_ms = outside_since.unwrap_or(last_seen_ms);
                events.push(ZoneEvent::Left {
                    track,
                    entered_ms: entered,
                    left_ms,
                });
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The left half of the frame.
    fn zone() -> Polygon {
        Polygon::parse(&[
            vec![0.0, 0.0],
            vec![0.5, 0.0],
            vec![0.5, 1.0],
            vec![0.0, 1.0],
        ])
        .unwrap()
    }

    /// A person standing at x (their box's bottom centre at (x, 0.8)).
    fn at(x: f32) -> BoundingBox {
        BoundingBox {
            x: x - 0.03,
            y: 0.6,
            width: 0.06,
            height: 0.2,
        }
    }

    #[test]
    fn a_person_counts_after_the_entry_threshold_and_until_the_exit_threshold() {
        let mut d = Dwell::new(zone(), 3_000, 1_000);
        let mut events = Vec::new();
        // Inside from t = 0 s to 10 s, then outside, one frame a second.
        for s in 0..=13u64 {
            let x = if s <= 10 { 0.2 } else { 0.8 };
            events.extend(d.update(&[(7, at(x))], s * 1_000, 5_000));
            let expected = (3..=11).contains(&s);
            assert_eq!(d.is_member(7), expected, "at {s} s");
        }
        assert_eq!(
            events,
            vec![
                ZoneEvent::Entered { track: 7, at_ms: 0 },
                ZoneEvent::Left {
                    track: 7,
                    entered_ms: 0,
                    left_ms: 11_000
                }
            ],
            "the wait is the 11 s actually spent inside"
        );
    }

    #[test]
    fn passing_through_or_stepping_out_briefly_does_not_count() {
        let mut d = Dwell::new(zone(), 3_000, 2_000);
        // Walks through the zone in 2 s: never a member.
        let mut events = Vec::new();
        for s in 0..=2u64 {
            events.extend(d.update(&[(1, at(0.3))], s * 1_000, 5_000));
        }
        events.extend(d.update(&[(1, at(0.9))], 3_000, 5_000));
        assert!(events.is_empty());
        // Another queues, steps out for 1 s (less than the exit threshold), comes back.
        let mut events = Vec::new();
        for (s, x) in [
            (10, 0.2),
            (11, 0.2),
            (12, 0.2),
            (13, 0.2),
            (14, 0.7),
            (15, 0.2),
            (16, 0.2),
        ] {
            events.extend(d.update(&[(2, at(x))], s * 1_000, 5_000));
        }
        assert_eq!(
            events,
            vec![ZoneEvent::Entered {
                track: 2,
                at_ms: 10_000
            }]
        );
        assert_eq!(d.members(), 1);
    }

    #[test]
    fn a_member_the_tracker_lost_leaves_as_of_when_last_seen() {
        let mut d = Dwell::new(zone(), 1_000, 1_000);
        for s in 0..=4u64 {
            d.update(&[(3, at(0.1))], s * 1_000, 5_000);
        }
        assert!(d.is_member(3));
        assert!(d.update(&[], 8_000, 5_000).is_empty(), "not gone yet");
        let events = d.update(&[], 10_000, 5_000);
        assert_eq!(
            events,
            vec![ZoneEvent::Left {
                track: 3,
                entered_ms: 0,
                left_ms: 4_000
            }]
        );
        assert_eq!(d.members(), 0);
    }
}
