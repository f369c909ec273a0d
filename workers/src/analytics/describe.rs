//! Person attributes per track (plan level_02, capability `attributes`).
//!
//! The detector reads each person's clothing colours in every frame of a
//! task that describes people; here a track takes the reading of the frame
//! it is first seen in as its description, and a new one at most every
//! refresh interval (capture time). The descriptions of one frame are
//! admitted against the device's `attributeCount` quota together, stored
//! (each id derived from task, track and frame job, so a frame described
//! again writes nothing new) and metered as one batch (the frame job's id:
//! counted once). A refused frame makes no description: its tracks keep
//! their earlier one, if any. Every detection of a described track carries
//! the track's latest description on the live stream.

use std::collections::HashMap;
use std::time::Duration;

use panoptes_shared::domain::attribute::{AttributeRecord, PersonAttributes};
use panoptes_shared::domain::detection::DetectionResult;
use panoptes_shared::domain::scene::DetectClass;
use panoptes_shared::domain::task::Capability;
use panoptes_shared::domain::usage::{Feature, UsageEvent};
use panoptes_shared::metering::{admit, meter};
use panoptes_shared::ports::Store;
use panoptes_shared::{Error, Result};

use super::event::Analysis;
use crate::metrics::WorkerMetrics;

/// A description is kept this long after its track was last seen (capture
/// time): past any tracker's memory, so a track that comes back is not
/// described again early; its id is never reused.
const FORGET_AFTER_MS: u64 = 600_000;

/// The descriptions of one task's tracks, on the device's owner.
pub struct Describer {
    refresh_ms: u64,
    tracks: HashMap<String, Track>,
    /// No description is tried before this capture time: the plan or the
    /// quota refused the last one (asked again after a refresh interval,
    /// not on every frame).
    refused_until_ms: u64,
}

struct Track {
    attributes: PersonAttributes,
    described_ms: u64,
    seen_ms: u64,
}

/// A detection whose track is due a description: its index, track and the
/// detector's reading.
struct Due<'a> {
    index: usize,
    track: &'a str,
    attributes: PersonAttributes,
}

/// Why a frame's due descriptions were not made.
enum Missed {
    /// The plan or the quota: nothing is made until the next refresh.
    Refused(String),
    /// The store: tried again on the next frame.
    Failed(Error),
}

impl Describer {
    pub fn new(refresh: Duration) -> Self {
        Self {
            refresh_ms: u64::try_from(refresh.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            tracks: HashMap::new(),
            refused_until_ms: 0,
        }
    }

    /// Describe the tracks of `r` that are due (admitted, stored, metered)
    /// and return, per detection, its track's current description.
    pub async fn frame(
        &mut self,
        store: &dyn Store,
        r: &DetectionResult,
        analysis: &Analysis,
        metrics: &WorkerMetrics,
    ) -> Vec<Option<PersonAttributes>> {
        let at = r.captured_at_ms;
        let due = self.due(r, analysis);
        if !due.is_empty() && at >= self.refused_until_ms {
            match record(store, r, &due).await {
                Ok((records, metered)) => {
                    metrics.attributes_described.add(records.len() as u64);
                    if let Err(e) = metered {
                        // Stored, so kept; the batch is unmetered (an outage).
                        metrics.attribute_failures.add(1);
                        tracing::warn!(device = %r.device_id, job = %r.job_id, error = %e, "attributes stored but not metered");
                    }
                    for d in &due {
                        self.tracks.insert(
                            d.track.to_owned(),
                            Track {
                                attributes: d.attributes,
                                described_ms: at,
                                seen_ms: at,
                            },
                        );
                    }
                }
                Err(Missed::Refused(why)) => {
                    metrics.attributes_refused.add(1);
                    self.refused_until_ms = at.saturating_add(self.refresh_ms);
                    tracing::debug!(device = %r.device_id, why, "attributes refused");
                }
                Err(Missed::Failed(e)) => {
                    metrics.attribute_failures.add(1);
                    tracing::warn!(device = %r.device_id, job = %r.job_id, error = %e, "attributes not stored; tried again with the next frame");
                }
            }
        }
        self.current(r, analysis)
    }

    /// The people of `r` whose track has no description, or one older than
    /// the refresh interval, and that the detector described.
    fn due<'a>(&self, r: &DetectionResult, analysis: &'a Analysis) -> Vec<Due<'a>> {
        let at = r.captured_at_ms;
        r.detections
            .iter()
            .zip(&analysis.per_detection)
            .enumerate()
            .filter_map(|(index, (d, (track, _)))| {
                let track = track.as_deref()?;
                let attributes = d.attributes.filter(|_| d.class == DetectClass::Person)?;
                let fresh = self
                    .tracks
                    .get(track)
                    .is_some_and(|t| at.saturating_sub(t.described_ms) < self.refresh_ms);
                (!fresh).then_some(Due {
                    index,
                    track,
                    attributes,
                })
            })
            .collect()
    }

    /// Per detection of `r`, its track's description (people only); marks
    /// the tracks seen and forgets those long gone.
    fn current(
        &mut self,
        r: &DetectionResult,
        analysis: &Analysis,
    ) -> Vec<Option<PersonAttributes>> {
        let at = r.captured_at_ms;
        let out = r
            .detections
            .iter()
            .zip(&analysis.per_detection)
            .map(|(d, (track, _))| {
                let t = self.tracks.get_mut(track.as_deref()?)?;
                t.seen_ms = t.seen_ms.max(at);
                (d.class == DetectClass::Person).then_some(t.attributes)
            })
            .collect();
        self.tracks
            .retain(|_, t| at.saturating_sub(t.seen_ms) <= FORGET_AFTER_MS);
        out
    }
}

/// Admit, store and meter the descriptions of one frame: the records
/// stored (new or already there) and whether metering them succeeded.
async fn record(
    store: &dyn Store,
    r: &DetectionResult,
    due: &[Due<'_>],
) -> std::result::Result<(Vec<AttributeRecord>, Result<bool>), Missed> {
    let device = store
        .get_device(r.user_id, r.device_id)
        .await
        .map_err(Missed::Failed)?
        .ok_or_else(|| Missed::Refused("the device was deleted".into()))?;
    if !Capability::Attributes.allowed_on(device.plan) {
        return Err(Missed::Refused(format!(
            "the device's plan ({}) has no attributes",
            device.plan.as_str()
        )));
    }
    let now = panoptes_shared::time::now();
    match admit(store, &device, Feature::AttributeCount, now).await {
        Ok(_) => {}
        Err(e @ (Error::QuotaExceeded(_) | Error::PlanRequired(_))) => {
            return Err(Missed::Refused(e.to_string()));
        }
        Err(e) => return Err(Missed::Failed(e)),
    }
    let observed_at =
        panoptes_shared::time::from_millis(i64::try_from(r.captured_at_ms).unwrap_or(i64::MAX));
    let records: Vec<AttributeRecord> = due
        .iter()
        .map(|d| AttributeRecord {
            id: AttributeRecord::id_for(r.task_id, d.track, r.job_id),
            user_id: r.user_id,
            device_id: r.device_id,
            scene_id: r.scene_id,
            task_id: r.task_id,
            track_id: d.track.to_owned(),
            attributes: d.attributes,
            confidence: r.detections[d.index].confidence,
            bounding_box: r.detections[d.index].bounding_box,
            observed_at,
            created_at: now,
        })
        .collect();
    store
        .insert_attributes(&records)
        .await
        .map_err(Missed::Failed)?;
    // The frame's descriptions, once per frame job whoever stored them
    // first (a frame republished after a crash meters nothing twice).
    let usage = UsageEvent::attributes(
        r.user_id,
        r.device_id,
        &r.job_id.to_string(),
        records.len() as u64,
        now,
    );
    let metered = meter(store, &device, &usage).await;
    Ok((records, metered))
}

#[cfg(test)]
mod tests {
    use panoptes_shared::domain::attribute::ColorName;
    use panoptes_shared::domain::detection::{BoundingBox, Detection};

    use super::*;

    fn seen(class: DetectClass, color: Option<ColorName>) -> Detection {
        Detection {
            class,
            confidence: 0.9,
            bounding_box: BoundingBox {
                x: 0.1,
                y: 0.1,
                width: 0.1,
                height: 0.3,
            },
            attributes: color.map(|c| PersonAttributes {
                upper_color: c,
                lower_color: ColorName::Black,
                upper_color_share: 0.8,
                lower_color_share: 0.7,
            }),
        }
    }

    fn tracked(tracks: &[&str]) -> Analysis {
        Analysis {
            per_detection: tracks
                .iter()
                .map(|t| (Some((*t).to_owned()), None))
                .collect(),
            metrics: None,
        }
    }

    /// What `frame` does once the store said yes.
    fn described(d: &mut Describer, r: &DetectionResult, a: &Analysis) {
        let due: Vec<(String, PersonAttributes)> = d
            .due(r, a)
            .iter()
            .map(|x| (x.track.to_owned(), x.attributes))
            .collect();
        for (track, attributes) in due {
            let at = r.captured_at_ms;
            d.tracks.insert(
                track,
                Track {
                    attributes,
                    described_ms: at,
                    seen_ms: at,
                },
            );
        }
    }

    #[test]
    fn a_person_is_due_when_first_seen_and_again_after_the_refresh_only() {
        let mut d = Describer::new(Duration::from_secs(30));
        let frame = |at: u64, color| {
            let mut r = crate::analytics::test_result(
                at,
                vec![
                    seen(DetectClass::Person, Some(color)),
                    seen(DetectClass::Vehicle, Some(color)),
                    seen(DetectClass::Person, None),
                ],
            );
            r.task_id = panoptes_shared::ids::TaskId::new();
            r
        };
        let a = tracked(&["t1", "t2", "t3"]);
        let first = frame(1_000, ColorName::Red);
        let due: Vec<&str> = d.due(&first, &a).iter().map(|x| x.track).collect();
        assert_eq!(
            due,
            ["t1"],
            "vehicles and people the detector did not describe are not due"
        );
        assert_eq!(
            d.current(&first, &a),
            [None, None, None],
            "nothing described yet"
        );
        described(&mut d, &first, &a);
        let blue = |at| frame(at, ColorName::Blue);
        assert!(d.due(&blue(30_999), &a).is_empty(), "within the refresh");
        let red = d.tracks["t1"].attributes;
        assert_eq!(d.current(&blue(30_999), &a), [Some(red), None, None]);
        assert_eq!(d.due(&blue(31_000), &a).len(), 1, "a refresh later");
        described(&mut d, &blue(31_000), &a);
        assert_eq!(d.tracks["t1"].attributes.upper_color, ColorName::Blue);
        // A track unseen for long is forgotten.
        let other = tracked(&["t9", "t8", "t7"]);
        d.current(&blue(31_000 + FORGET_AFTER_MS + 1), &other);
        assert!(d.tracks.is_empty());
    }
}
