//! Stream slots under attack and outage: opens that time out while Redis
//! stalls leave no slot behind; a made-up `Last-Event-ID` evicts nobody; a
//! stream token takes its own slot over once; client input is a 400, never an
//! outage.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use panoptes_shared::ids::UserId;
use panoptes_shared::ports::StreamToken;
use uuid::Uuid;

use crate::fault_proxy::{FaultProxy, Mode};
use crate::helpers::{Backend, TestApp, redis_url, spawn_with_env};
use crate::sse::{all_url, publish, user_with_device};
use crate::sse_client::{Opened, SseClient, open, open_with};

const LIMIT: usize = 10;
const WAIT: Duration = Duration::from_secs(10);

fn prefix() -> String {
    format!("panoptes-test:{}", Uuid::new_v4())
}

/// Two replicas sharing Redis under `prefix`, with `extra` settings.
async fn replicas(prefix: &str, extra: &[(&str, &str)]) -> (TestApp, TestApp) {
    (
        spawn_with_env(Backend::Distributed, prefix, extra).await,
        spawn_with_env(Backend::Distributed, prefix, extra).await,
    )
}

async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// How many slot leases `user` holds, read straight from Redis.
async fn leases_held(prefix: &str, user: UserId) -> usize {
    let key = panoptes_infra::redis_keys::stream_leases(prefix, &user.to_string());
    redis::cmd("ZCARD")
        .arg(key)
        .query_async(&mut redis().await)
        .await
        .unwrap()
}

/// Open `n` streams at once, alternating between `apps`, each with these
/// reconnect values; the streams opened and the statuses of the refused.
async fn open_many(
    apps: &[&TestApp],
    token: &str,
    n: usize,
    last_event_id: impl Fn(usize) -> Option<String>,
) -> (Vec<SseClient>, Vec<u16>) {
    let opens = (0..n).map(|i| {
        let (url, id) = (all_url(apps[i % apps.len()]), last_event_id(i));
        async move { open(&url, Some(token), id.as_deref()).await }
    });
    let (mut streams, mut refused) = (Vec::new(), Vec::new());
    for opened in futures::future::join_all(opens).await {
        match opened {
            Opened::Stream(s) => streams.push(s),
            Opened::Refused { status, .. } => refused.push(status),
        }
    }
    (streams, refused)
}

#[tokio::test]
async fn opens_that_timed_out_while_redis_stalled_leave_no_slot_behind() {
    // Arrange: the gateway reaches Redis through a proxy that can stall.
    let upstream = url::Url::parse(&redis_url()).unwrap();
    let upstream = tokio::net::lookup_host((
        upstream.host_str().unwrap(),
        upstream.port().unwrap_or(6379),
    ))
    .await
    .unwrap()
    .next()
    .unwrap();
    let proxy = FaultProxy::start(upstream).await;
    let prefix = prefix();
    let via_proxy = format!("redis://{}", proxy.addr());
    let app = spawn_with_env(
        Backend::Distributed,
        &prefix,
        &[("PANOPTES__REDIS__URL", via_proxy.as_str())],
    )
    .await;
    let user = app.signup().await;
    let uid: UserId = user.id.parse().unwrap();
    // Load the slot scripts into Redis (as any earlier stream would have), so
    // that the stalled acquires really run when Redis catches up.
    let slots = app.state.slots.port();
    let warm = UserId::new();
    slots.acquire(warm, "warm", 1, WAIT, None).await.unwrap();
    slots.abandon(warm, "warm", WAIT).await.unwrap();

    // Act: Redis stalls while the user opens `LIMIT` streams; each gives up.
    proxy.set(Mode::Stall);
    let (streams, refused) = open_many(&[&app], &user.token, LIMIT, |_| None).await;
    assert!(streams.is_empty());
    assert_eq!(refused, vec![503; LIMIT], "every open gave up on Redis");
    assert!(
        app.state.slots.pending() >= LIMIT,
        "each open that gave up is abandoning its lease"
    );
    // Redis catches up and runs every acquire it was sent.
    proxy.set(Mode::Pass);
    tokio::time::timeout(WAIT, app.state.slots.settled())
        .await
        .expect("the given-up slots are abandoned once Redis answers");

    // Assert: no lease is held by no stream, and the user has all ten slots.
    assert_eq!(leases_held(&prefix, uid).await, 0, "no orphan leases");
    let abandoned = panoptes_infra::redis_keys::stream_abandoned(&prefix, &user.id);
    let recorded: usize = redis::cmd("ZCARD")
        .arg(abandoned)
        .query_async(&mut redis().await)
        .await
        .unwrap();
    assert_eq!(recorded, LIMIT, "each given-up lease is recorded once");
    let (streams, refused) = open_many(&[&app], &user.token, LIMIT, |_| None).await;
    assert_eq!((streams.len(), refused), (LIMIT, vec![]));
    assert_eq!(leases_held(&prefix, uid).await, LIMIT);
    let (status, _, body) = open(&all_url(&app), Some(&user.token), None)
        .await
        .refused();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("SSE_CONNECTION_LIMIT"))
    );
}

#[tokio::test]
async fn made_up_last_event_ids_never_evict_anyone_across_replicas() {
    let prefix = prefix();
    let (a, b) = replicas(&prefix, &[("PANOPTES__SSE__KEEP_ALIVE_MS", "100")]).await;
    let (user, uid, did) = user_with_device(&a).await;
    let mut held: Vec<SseClient> = Vec::new();
    for i in 0..4 {
        let app = if i % 2 == 0 { &a } else { &b };
        held.push(open(&all_url(app), Some(&user.token), None).await.stream());
    }
    let task = Uuid::new_v4();
    let sent = publish(&a, uid, did, task, 0..1).await;
    let real = held[0].next_result().await.unwrap().id.unwrap();
    assert_eq!(real, sent[0].event_id());
    let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap();
    // Plausible ids: copied from a real event, or made up around now.
    let made_up = |i: usize| {
        Some(match i % 3 {
            0 => real.clone(),
            1 => format!("{task}-{}", now - 1),
            _ => format!("{}-{}", Uuid::new_v4(), now - 5),
        })
    };

    // Twenty opens at once on two replicas: six fit, whatever ids they carry.
    let (opened, refused) = open_many(&[&a, &b], &user.token, 20, &made_up).await;
    assert_eq!(opened.len(), LIMIT - held.len(), "refused: {refused:?}");
    assert!(refused.iter().all(|s| *s == 429), "{refused:?}");
    held.extend(opened);
    assert_eq!(leases_held(&prefix, uid).await, LIMIT);
    // At the limit, more made-up ids take nothing either.
    let (opened, refused) = open_many(&[&a, &b], &user.token, 10, made_up).await;
    assert!(opened.is_empty());
    assert_eq!(refused, vec![429; 10]);
    assert_eq!(leases_held(&prefix, uid).await, LIMIT);

    // Every one of the ten streams is still live (each renewed its lease many
    // times since) and receives the next event.
    let next = publish(&b, uid, did, task, 1..2).await;
    for s in &mut held {
        let mut got = s.next_result().await.unwrap().id.unwrap();
        if got == real {
            got = s.next_result().await.unwrap().id.unwrap();
        }
        assert_eq!(got, next[0].event_id());
    }
}

#[tokio::test]
async fn a_stream_token_takes_over_its_own_slot_once_and_the_replaced_stream_ends() {
    // Renewals every 60 s: only the takeover notice can end a replaced stream
    // within this test.
    let prefix = prefix();
    let (a, b) = replicas(
        &prefix,
        &[
            ("PANOPTES__SSE__KEEP_ALIVE_MS", "60000"),
            ("PANOPTES__SSE__LEASE_TTL_MS", "120000"),
        ],
    )
    .await;
    let (user, uid, did) = user_with_device(&a).await;
    let mut streams = Vec::new();
    for i in 0..LIMIT {
        let app = if i % 2 == 0 { &a } else { &b };
        streams.push(open(&all_url(app), Some(&user.token), None).await.stream());
    }
    let mut old = streams.remove(0);
    let token = old.stream_token();
    assert_eq!(old.next().await.unwrap().retry, Some(3000));
    let first = old.next().await.unwrap();
    assert_eq!(
        (first.event.as_deref(), first.id.as_deref()),
        (Some("stream_token"), None),
        "the token event carries no id, so it moves no browser's resume point"
    );
    assert_eq!(
        first.json()["streamToken"],
        token.as_str(),
        "same as the header"
    );
    let task = Uuid::new_v4();
    publish(&a, uid, did, task, 0..1).await;
    let last = old.next_result().await.unwrap().id.unwrap();

    // A well-formed token this API never issued evicts nobody.
    let invented = StreamToken::generate();
    let refused = open_with(
        &all_url(&b),
        Some(&user.token),
        Some(&last),
        Some(invented.expose()),
    )
    .await
    .refused();
    assert_eq!(refused.0, 429);

    // The client's network died without the server noticing; it reconnects to
    // the other replica with its last id and its token, at the limit.
    let missed = publish(&a, uid, did, task, 1..3).await;
    let mut resumed = open_with(&all_url(&b), Some(&user.token), Some(&last), Some(&token))
        .await
        .stream();
    assert_ne!(
        resumed.stream_token(),
        token,
        "the new stream has its own token"
    );
    for want in &missed {
        assert_eq!(
            resumed.next_result().await.unwrap().id.unwrap(),
            want.event_id(),
            "events resume exactly as before"
        );
    }
    old.ended_within(Duration::from_secs(5)).await;
    assert_eq!(leases_held(&prefix, uid).await, LIMIT);

    // The same token again, on either replica: it was used.
    for app in [&a, &b] {
        let (status, _, body) = open_with(&all_url(app), Some(&user.token), None, Some(&token))
            .await
            .refused();
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (429, Some("SSE_CONNECTION_LIMIT"))
        );
    }
    // The new stream's token works once, in turn, as a query parameter too
    // (how a page that reopens an EventSource sends it).
    let url = format!("{}?streamToken={}", all_url(&a), resumed.stream_token());
    let _third = open(&url, Some(&user.token), None).await.stream();
    resumed.ended_within(Duration::from_secs(5)).await;
    assert_eq!(leases_held(&prefix, uid).await, LIMIT);
}

/// Collects the ERROR events logged on this thread (the test's runtime).
#[derive(Clone, Default)]
struct Errors(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Errors {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() == tracing::Level::ERROR {
            self.0.lock().unwrap().push(format!("{event:?}"));
        }
    }
}

#[tokio::test]
async fn impossible_resume_values_are_a_400_never_an_outage() {
    use tracing_subscriber::layer::SubscriberExt;
    let errors = Errors::default();
    let _logs =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(errors.clone()));
    let app = spawn_with_env(Backend::Distributed, &prefix(), &[]).await;
    let user = app.signup().await;
    let task = Uuid::new_v4();
    let url = all_url(&app);
    let bad_token = format!("?streamToken={}*", "A".repeat(42));
    let cases = [
        // (Last-Event-ID header, query, Stream-Token header, field named)
        (
            Some(format!("{task}-{}", u64::MAX)),
            "",
            None,
            "Last-Event-ID",
        ),
        (
            Some(format!("{task}-99999999999999")),
            "",
            None,
            "Last-Event-ID",
        ),
        (
            Some(format!("{task}-1{}", "0".repeat(30))),
            "",
            None,
            "Last-Event-ID",
        ),
        (Some("0-0".to_owned()), "", None, "Last-Event-ID"),
        (None, "?lastEventId=not-an-event-id", None, "lastEventId"),
        (None, "", Some("not-a-token"), "Stream-Token"),
        (None, bad_token.as_str(), None, "streamToken"),
    ];
    for (id, query, stream_token, field) in &cases {
        let opened = open_with(
            &format!("{url}{query}"),
            Some(&user.token),
            id.as_deref(),
            *stream_token,
        )
        .await;
        let (status, _, body) = opened.refused();
        assert_eq!(
            (
                status,
                body["error"]["code"].as_str(),
                body["error"]["details"]["field"].as_str()
            ),
            (400, Some("VALIDATION_ERROR"), Some(*field)),
            "{id:?} {query} {stream_token:?}: {body}"
        );
    }
    // An id from before the replay buffer is fine: the stream starts fresh.
    open(&url, Some(&user.token), Some(&format!("{task}-1")))
        .await
        .stream();
    assert_eq!(
        errors.0.lock().unwrap().clone(),
        Vec::<String>::new(),
        "nothing logged as an error"
    );
}
