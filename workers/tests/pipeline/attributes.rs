//! Person attributes end to end (real Redis, S3 and a SQL store): frames of
//! a level_02 task with the `attributes` capability are described by the
//! detector, each track once and then at most every refresh interval by
//! analytics, stored, metered once per frame job and shown on the stream;
//! nothing of it for level_01 devices, tasks without the capability, or
//! past the quota.

use std::collections::{BTreeMap, BTreeSet};

use panoptes_shared::domain::attribute::{AttributeRecord, PersonAttributes};
use panoptes_shared::domain::plan::Plan;
use panoptes_shared::domain::scene::DetectClass;
use panoptes_shared::domain::task::{AnalysisTask, Capability};
use panoptes_shared::domain::usage::{Feature, UsageEvent};
use panoptes_shared::ports::{AttributeFilter, UsageFilter};

use super::*;

impl World {
    /// An analytics node describing tracks at most every `refresh`, holding
    /// results `window` for earlier captures.
    fn describing(
        &self,
        node: &str,
        refresh: Duration,
        window: Duration,
    ) -> (AnalyticsWorker, Arc<WorkerMetrics>) {
        let metrics = Arc::new(WorkerMetrics::default());
        let worker = AnalyticsWorker::new(
            AnalyticsPorts {
                store: self.store.clone(),
                log: self.log.clone(),
                leases: self.leases.clone(),
                bus: self.bus.clone(),
                blobs: self.blobs.clone(),
                scenes: Arc::new(SceneCache::new(self.store.clone(), Duration::from_secs(10))),
                metrics: metrics.clone(),
            },
            AnalyticsSettings {
                node: node.into(),
                lease_ttl: Duration::from_secs(10),
                reorder_window: window,
                active_within: Duration::from_secs(60),
                read_max: 100,
                persist_every: Duration::from_secs(10),
                snapshot_url_ttl: Duration::from_secs(300),
                attribute_refresh: refresh,
            },
        );
        (worker, metrics)
    }

    /// Put the device on `plan`, its attributes capped at `cap` a month.
    async fn plan(&self, plan: Plan, cap: Option<u64>) {
        let mut d = self
            .store
            .get_device(self.user, self.device)
            .await
            .unwrap()
            .unwrap();
        d.plan = plan;
        d.quota.attribute_count = cap;
        assert!(self.store.update_device(self.user, &d).await.unwrap());
    }

    /// Start a task on the device with `capabilities`.
    async fn task_with(&self, capabilities: Vec<Capability>) -> AnalysisTask {
        start(
            self.store.as_ref(),
            self.user,
            self.device,
            StartRequest {
                scene: self.scene,
                capabilities,
                trigger: TaskTrigger::Api,
                require_online: false,
            },
            panoptes_shared::time::now(),
        )
        .await
        .unwrap()
    }

    /// One job per `(frame, capture offset ms)`, all with `attributes` set
    /// as given (what ingest or edge push would have set, or not).
    fn jobs(&self, task: TaskId, frames: &[(u32, u64)], attributes: bool) -> Vec<FrameJob> {
        let t = now_ms();
        frames
            .iter()
            .map(|&(n, dt)| FrameJob {
                attributes,
                ..self.job(frame(n), t + dt, task)
            })
            .collect()
    }

    /// The published events (documented), in order.
    async fn events(&self) -> Vec<Value> {
        self.bus
            .replay_after(self.user, Offset::START, 1_000)
            .await
            .unwrap()
            .iter()
            .map(|e| common::documented_event(&e.data))
            .collect()
    }

    async fn records(&self, task: TaskId) -> Vec<AttributeRecord> {
        let f = AttributeFilter {
            task: Some(task),
            ..Default::default()
        };
        let page = self
            .store
            .list_attributes(
                self.user,
                &f,
                PageRequest {
                    page: 1,
                    limit: 100,
                },
            )
            .await
            .unwrap();
        assert_eq!(page.total, page.items.len() as u64);
        page.items
    }

    async fn attribute_usage(&self) -> (u64, Vec<UsageEvent>) {
        let period = panoptes_shared::domain::plan::billing_period(panoptes_shared::time::now()).0;
        let totals = self
            .store
            .usage_totals(self.user, Some(self.device), &period)
            .await
            .unwrap();
        let events = self
            .store
            .list_usage_events(
                self.user,
                &UsageFilter {
                    feature: Some(Feature::AttributeCount),
                    ..Default::default()
                },
                PageRequest {
                    page: 1,
                    limit: 100,
                },
            )
            .await
            .unwrap()
            .items;
        (
            totals.get(&Feature::AttributeCount).copied().unwrap_or(0),
            events,
        )
    }
}

/// The reorder window where one detector takes the frames in capture order.
const WINDOW: Duration = Duration::from_millis(100);

/// Detect and analyse until `n` events are published and the queue is empty.
async fn run(
    w: &World,
    detector: &DetectWorker,
    analytics: &AnalyticsWorker,
    metrics: &WorkerMetrics,
    n: u64,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        detector.step().await.unwrap();
        analytics.step().await.unwrap();
        let stats = w.queue.stats().await.unwrap();
        if metrics.published.get() >= n && stats.waiting + stats.pending == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not done in 30 s: {stats:?}"
        );
    }
}

/// Per track, the attributes its detections carried in `events`, in order
/// (`None` for a detection without).
fn by_track(events: &[Value]) -> BTreeMap<String, Vec<Option<PersonAttributes>>> {
    let mut out: BTreeMap<String, Vec<Option<PersonAttributes>>> = BTreeMap::new();
    for e in events {
        for d in e["detections"].as_array().unwrap() {
            let attributes = d
                .get("attributes")
                .map(|a| serde_json::from_value::<PersonAttributes>(a.clone()).unwrap());
            if attributes.is_some() {
                assert_eq!(d["type"], "person", "only people are described: {d}");
            }
            let Some(track) = d["trackId"].as_str() else {
                assert!(
                    attributes.is_none(),
                    "an untracked detection described: {d}"
                );
                continue;
            };
            out.entry(track.to_owned()).or_default().push(attributes);
        }
    }
    out
}

/// A level_02 task with `attributes`, on PostgreSQL, with a frame job
/// redelivered (its first taker died) and one sent twice, two detectors and
/// two analytics replicas: each track is described once (the refresh is
/// longer than the run), its description rides on its detections, is stored
/// once and metered once per frame job; then the device's results are
/// published again from the start (a new owner after a crash before the
/// commit) and nothing more is stored or metered.
#[tokio::test]
async fn level_02_people_are_described_once_per_track_stored_and_metered_once() {
    let w = world_on(policy(), backends::postgres().await).await;
    w.plan(Plan::Level02, None).await;
    let task = w.task_with(vec![Capability::Attributes]).await;
    let device = w.store.get_device(w.user, w.device).await.unwrap().unwrap();
    assert!(
        task.runs(Capability::Attributes, device.plan),
        "what ingest and edge push set on the jobs"
    );
    let jobs = w.jobs(
        task.id,
        &[(50, 0), (200, 250), (350, 500), (500, 750)],
        true,
    );
    for job in jobs.iter().chain(std::iter::once(&jobs[3])) {
        w.queue.enqueue(job).await.unwrap();
    }
    let dead = w
        .queue
        .pull("detect-dead", 1, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);

    let (da, _) = w.detector("detect-a", 2);
    let (db, _) = w.detector("detect-b", 2);
    let refresh = Duration::from_secs(30);
    // Long enough for the dead detector's frame to be reclaimed (after the
    // queue's 300 ms visibility) and detected before the later ones are
    // released, however busy the machine: none is dropped as late.
    let window = Duration::from_secs(3);
    let (aa, ama) = w.describing("analytics-a", refresh, window);
    let (ab, amb) = w.describing("analytics-b", refresh, window);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (a, b) = tokio::join!(da.step(), db.step());
        a.unwrap();
        b.unwrap();
        let (a, b) = tokio::join!(aa.step(), ab.step());
        a.unwrap();
        b.unwrap();
        let stats = w.queue.stats().await.unwrap();
        if ama.published.get() + amb.published.get() == 4 && stats.waiting + stats.pending == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not done in 30 s: {stats:?}"
        );
    }
    // The detector described the people of every frame.
    let results = w.results().await;
    assert_eq!(results.len(), 4);
    for r in &results {
        assert!(r.detections.iter().any(|d| d.attributes.is_some()), "{r:?}");
        assert!(
            r.detections
                .iter()
                .all(|d| d.attributes.is_none() || d.class == DetectClass::Person)
        );
    }

    let events = w.events().await;
    assert_eq!(events.len(), 4);
    let tracks = by_track(&events);
    let described: BTreeMap<&String, &PersonAttributes> = tracks
        .iter()
        .filter_map(|(t, seen)| seen.iter().flatten().next().map(|a| (t, a)))
        .collect();
    assert!(
        described.len() >= 5,
        "the walkers of four frames: {tracks:?}"
    );
    for (track, seen) in &tracks {
        // Once described, every later detection of the track carries the
        // same description (no refresh within 30 s).
        let first = seen.iter().position(Option::is_some).unwrap_or(seen.len());
        assert!(
            seen[first..]
                .iter()
                .all(|a| a.as_ref() == seen.get(first).and_then(Option::as_ref)),
            "{track}: {seen:?}"
        );
    }
    // As documented: camelCase names and shares.
    let first = events
        .iter()
        .flat_map(|e| e["detections"].as_array().unwrap())
        .find_map(|d| d.get("attributes"))
        .unwrap();
    for key in [
        "upperColor",
        "lowerColor",
        "upperColorShare",
        "lowerColorShare",
    ] {
        assert!(first.get(key).is_some(), "{first}");
    }

    // One record per described track, as on the stream; metered once per
    // frame job that described someone.
    let records = w.records(task.id).await;
    assert_eq!(records.len(), described.len(), "{records:?}");
    for r in &records {
        assert_eq!(
            (r.user_id, r.device_id, r.scene_id),
            (w.user, w.device, w.scene)
        );
        assert_eq!(described.get(&r.track_id), Some(&&r.attributes), "{r:?}");
    }
    let (used, usage) = w.attribute_usage().await;
    assert_eq!(used, records.len() as u64);
    let batches: BTreeSet<String> = jobs
        .iter()
        .map(|j| format!("attributes:{}", j.id))
        .collect();
    assert!(usage.iter().all(|u| batches.contains(&u.id)), "{usage:?}");
    assert_eq!(usage.iter().map(|u| u.quantity).sum::<u64>(), used);
    assert_eq!(
        ama.attributes_described.get() + amb.attributes_described.get(),
        used
    );

    // Published again from the start by a new owner: the same frames, the
    // same tracks, the same record ids and batch ids: nothing new.
    aa.release_all().await;
    ab.release_all().await;
    w.log.commit(w.device, Offset::START).await.unwrap();
    let (ac, amc) = w.describing("analytics-c", refresh, WINDOW);
    run(&w, &da, &ac, &amc, 4).await;
    let again = w.events().await;
    assert_eq!(again.len(), 8);
    assert_eq!(by_track(&again[4..]), tracks, "the same descriptions again");
    assert_eq!(w.records(task.id).await.len(), records.len());
    let (used_again, usage_again) = w.attribute_usage().await;
    assert_eq!((used_again, usage_again.len()), (used, usage.len()));
}

/// The same people in five frames half a second apart, refreshed every
/// second: each track is described at 0, 1 and 2 s, and the frames between
/// describe (and meter) nothing.
#[tokio::test]
async fn a_track_is_described_again_only_after_the_refresh_interval() {
    let w = world(policy()).await;
    w.plan(Plan::Level02, None).await;
    let task = w.task_with(vec![Capability::Attributes]).await;
    let jobs = w.jobs(
        task.id,
        &[
            (200, 0),
            (200, 500),
            (200, 1_000),
            (200, 1_500),
            (200, 2_000),
        ],
        true,
    );
    for job in &jobs {
        w.queue.enqueue(job).await.unwrap();
    }
    let (detector, _) = w.detector("detect-a", 1);
    let (analytics, metrics) = w.describing("analytics-a", Duration::from_secs(1), WINDOW);
    run(&w, &detector, &analytics, &metrics, 5).await;

    let tracks = by_track(&w.events().await);
    let described: Vec<&String> = tracks
        .iter()
        .filter(|(_, seen)| seen.iter().any(Option::is_some))
        .map(|(t, _)| t)
        .collect();
    assert!(described.len() >= 5, "{tracks:?}");
    let records = w.records(task.id).await;
    let mut per_track: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for r in &records {
        per_track
            .entry(r.track_id.as_str())
            .or_default()
            .push(r.observed_at.timestamp_millis() as u64 - jobs[0].captured_at_ms);
    }
    assert_eq!(per_track.len(), described.len());
    for (track, mut at) in per_track {
        at.sort_unstable();
        assert_eq!(at, [0, 1_000, 2_000], "{track}");
    }
    let (used, usage) = w.attribute_usage().await;
    assert_eq!(used, records.len() as u64);
    let batches: BTreeSet<&str> = usage.iter().map(|u| u.id.as_str()).collect();
    let want: Vec<String> = [0, 2, 4]
        .iter()
        .map(|&i| format!("attributes:{}", jobs[i].id))
        .collect();
    assert_eq!(batches, want.iter().map(String::as_str).collect());
}

/// Frames flagged for description anyway (a stale or wrong producer) of a
/// level_02 task without the capability, and of a task whose device moved
/// to level_01: the stream carries no attributes, none are stored, nothing
/// is metered. A frame not flagged is not even described by the detector.
#[tokio::test]
async fn no_attributes_without_level_02_and_the_capability() {
    for (plan_at_start, caps, plan_later) in [
        (Plan::Level02, vec![], Plan::Level02),
        (Plan::Level02, vec![Capability::Attributes], Plan::Level01),
    ] {
        let w = world(policy()).await;
        w.plan(plan_at_start, None).await;
        let task = w.task_with(caps).await;
        w.plan(plan_later, None).await;
        assert!(
            !task.runs(Capability::Attributes, plan_later),
            "ingest would not set it"
        );
        let mut jobs = w.jobs(task.id, &[(200, 0), (350, 500), (500, 1_000)], true);
        jobs[2].attributes = false;
        for job in &jobs {
            w.queue.enqueue(job).await.unwrap();
        }
        let (detector, _) = w.detector("detect-a", 1);
        let (analytics, metrics) = w.describing("analytics-a", Duration::from_secs(1), WINDOW);
        run(&w, &detector, &analytics, &metrics, 3).await;

        let results = w.results().await;
        let described = |job: &FrameJob| {
            results
                .iter()
                .find(|r| r.job_id == job.id)
                .unwrap()
                .detections
                .iter()
                .any(|d| d.attributes.is_some())
        };
        assert!(
            described(&jobs[0]),
            "a flagged frame is described by the detector"
        );
        assert!(!described(&jobs[2]), "an unflagged one is not");
        let events = w.events().await;
        assert_eq!(events.len(), 3);
        for e in &events {
            assert!(!e.to_string().contains("attributes"), "{e}");
        }
        assert!(w.records(task.id).await.is_empty());
        assert_eq!(w.attribute_usage().await, (0, vec![]));
        assert_eq!(
            metrics.attributes_described.get() + metrics.attributes_refused.get(),
            0
        );
    }
}

/// A device capped at one description a month: the first frame's people are
/// all described (admitted while some was left, as documented), which uses
/// the quota up and tells the owner; the refreshes after it are refused, and
/// the tracks keep their first description on the stream.
#[tokio::test]
async fn past_the_quota_no_new_descriptions_are_made() {
    let w = world(policy()).await;
    w.plan(Plan::Level02, Some(1)).await;
    let task = w.task_with(vec![Capability::Attributes]).await;
    let jobs = w.jobs(task.id, &[(200, 0), (200, 1_000), (200, 2_000)], true);
    for job in &jobs {
        w.queue.enqueue(job).await.unwrap();
    }
    let (detector, _) = w.detector("detect-a", 1);
    let (analytics, metrics) = w.describing("analytics-a", Duration::from_secs(1), WINDOW);
    run(&w, &detector, &analytics, &metrics, 3).await;

    let records = w.records(task.id).await;
    assert!(records.len() >= 2, "{records:?}");
    assert!(
        records
            .iter()
            .all(|r| r.observed_at.timestamp_millis() as u64 == jobs[0].captured_at_ms),
        "only the first frame's: {records:?}"
    );
    let (used, usage) = w.attribute_usage().await;
    assert_eq!((used, usage.len()), (records.len() as u64, 1));
    assert_eq!(metrics.attributes_refused.get(), 2, "both refreshes");
    // Each track shows its first description in every frame.
    let tracks = by_track(&w.events().await);
    for r in &records {
        let seen = &tracks[&r.track_id];
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(
            seen.iter().all(|a| a.as_ref() == Some(&r.attributes)),
            "{seen:?}"
        );
    }
    let notices = w
        .store
        .list_events(
            w.user,
            Some(w.device),
            PageRequest {
                page: 1,
                limit: 100,
            },
        )
        .await
        .unwrap()
        .items;
    assert!(
        notices
            .iter()
            .any(|e| e.kind == EventKind::QuotaExceeded && e.data["feature"] == "attributeCount"),
        "{notices:?}"
    );
}
