//! The repository behaviour suite, written once and run against SQLite and PostgreSQL.

use chrono::Duration;
use panoptes_infra::store::SqlStore;
use panoptes_shared::Error;
use panoptes_shared::domain::api_key::{ApiKey, GeneratedKey, KeyHash, KeyType, Scope, Scopes};
use panoptes_shared::domain::device::{
    Device, DeviceStatus, DeviceType, GeoSource, QuotaLimits, RtspUrl, Sealed,
};
use panoptes_shared::domain::page::PageRequest;
use panoptes_shared::domain::plan::Plan;
use panoptes_shared::domain::polygon::Polygon;
use panoptes_shared::domain::scene::{AnalysisType, Scene, SceneParameters, SceneStatus, Zones};
use panoptes_shared::domain::schedule::{SLOTS_PER_DAY, Schedule, UtcOffset};
use panoptes_shared::domain::user::{Email, Role, Session, User};
use panoptes_shared::ids::{ApiKeyId, DeviceId, SceneId, SessionId, UserId};
use panoptes_shared::ports::{ApiKeyRepo, DeviceRepo, SceneRepo, SessionRepo, Store, UserRepo};
use panoptes_shared::time::now;

pub(crate) async fn user(store: &SqlStore) -> User {
    let u = User {
        id: UserId::new(),
        email: Email::parse(&format!("u-{}@example.com", uuid::Uuid::new_v4())).unwrap(),
        name: Some("Ada".into()),
        role: Role::User,
        created_at: now(),
    };
    store.create_user(&u, "$argon2id$fake").await.unwrap();
    u
}

pub(crate) fn device(owner: UserId, name: &str) -> Device {
    let mut weekly: [Option<[bool; SLOTS_PER_DAY]>; 7] = Default::default();
    weekly[5] = Some([true; SLOTS_PER_DAY]);
    let t = now();
    Device {
        id: DeviceId::new(),
        user_id: owner,
        name: name.into(),
        description: Some("front door".into()),
        rtsp_url: RtspUrl::parse("rtsp://10.1.2.3:554/stream1").unwrap().0,
        credentials: Some(Sealed("v1.opaque".into())),
        location_label: Some("Taipei 101".into()),
        latitude: Some(25.0339),
        longitude: Some(121.5645),
        geo_source: Some(GeoSource::Manual),
        device_type: DeviceType::IpCamera,
        plan: Plan::Level02,
        tags: vec!["entrance".into(), "floor-1".into()],
        utc_offset: UtcOffset::parse("UTC+5:30").unwrap(),
        schedule: Some(Schedule {
            daily: Some([false; SLOTS_PER_DAY]),
            weekly,
        }),
        status: DeviceStatus::Offline,
        quota: QuotaLimits {
            analysis_seconds: Some(3600),
            ..Default::default()
        },
        created_at: t,
        updated_at: t,
        push_enabled: false,
        last_seen_at: None,
        allow_plain_basic_auth: false,
    }
}

pub(crate) fn scene(owner: UserId, device: DeviceId, name: &str) -> Scene {
    let square = Polygon::parse(&[
        vec![0.1, 0.1],
        vec![0.5, 0.1],
        vec![0.5, 0.5],
        vec![0.1, 0.5],
    ])
    .unwrap();
    let t = now();
    Scene {
        id: SceneId::new(),
        user_id: owner,
        device_id: device,
        name: name.into(),
        description: None,
        analysis_type: AnalysisType::QueueAnalysis,
        zones: Zones::new(Some(square), None).unwrap(),
        parameters: SceneParameters {
            confidence_threshold: 0.45,
            ..Default::default()
        },
        status: SceneStatus::Active,
        created_at: t,
        updated_at: t,
    }
}

fn api_key(owner: UserId, name: &str) -> (ApiKey, KeyHash) {
    let g = GeneratedKey::new(KeyType::Personal);
    let t = now();
    let k = ApiKey {
        id: ApiKeyId::new(),
        user_id: owner,
        name: name.into(),
        key_type: KeyType::Personal,
        display_prefix: g.display_prefix,
        scopes: KeyType::Personal.default_scopes(),
        expires_at: Some(t + Duration::days(30)),
        last_used_at: None,
        revoked_at: None,
        rotated_at: None,
        created_at: t,
        updated_at: t,
        device_id: None,
    };
    (k, g.hash)
}

pub async fn users_are_unique_by_email_and_round_trip(store: SqlStore) {
    let u = user(&store).await;
    let (found, hash) = store.find_user_by_email(&u.email).await.unwrap().unwrap();
    assert_eq!(found, u);
    assert_eq!(hash, "$argon2id$fake");
    let dup = User {
        id: UserId::new(),
        ..u.clone()
    };
    assert!(matches!(
        store.create_user(&dup, "x").await,
        Err(Error::Conflict(_))
    ));
    assert!(store.set_user_role(u.id, Role::Admin).await.unwrap());
    assert_eq!(
        store.get_user(u.id).await.unwrap().unwrap().role,
        Role::Admin
    );
    assert!(store.get_user(UserId::new()).await.unwrap().is_none());
    let page = store
        .list_users(PageRequest {
            page: 1,
            limit: 100,
        })
        .await
        .unwrap();
    assert!(page.items.iter().any(|x| x.id == u.id));
}

pub async fn sessions_are_revoked_only_by_their_owner(store: SqlStore) {
    let (a, b) = (user(&store).await, user(&store).await);
    let t = now();
    let s = Session {
        id: SessionId::new(),
        user_id: a.id,
        created_at: t,
        expires_at: t + Duration::hours(1),
        revoked_at: None,
    };
    store.create_session(&s).await.unwrap();
    assert_eq!(store.get_session(s.id).await.unwrap().unwrap(), s);
    assert!(
        !store.revoke_session(b.id, s.id, t).await.unwrap(),
        "another user cannot revoke it"
    );
    assert!(store.revoke_session(a.id, s.id, t).await.unwrap());
    assert_eq!(
        store.get_session(s.id).await.unwrap().unwrap().revoked_at,
        Some(t)
    );
    assert!(
        !store.revoke_session(a.id, s.id, t).await.unwrap(),
        "revoking twice matches nothing"
    );
}

pub async fn api_keys_are_found_by_hash_scoped_by_owner_and_rotated(store: SqlStore) {
    let (a, b) = (user(&store).await, user(&store).await);
    let (k, hash) = api_key(a.id, "ci");
    store.insert_api_key(&k, &hash).await.unwrap();
    let (found, stored) = store.find_api_key_by_hash(&hash).await.unwrap().unwrap();
    assert_eq!(found, k);
    assert!(stored.matches(&hash));
    assert!(
        store.get_api_key(b.id, k.id).await.unwrap().is_none(),
        "other tenant sees nothing"
    );

    let mut edited = k.clone();
    edited.name = "renamed".into();
    edited.scopes = Scopes::new(vec![Scope::DeviceRead]);
    assert!(!store.update_api_key(b.id, &edited).await.unwrap());
    assert!(store.update_api_key(a.id, &edited).await.unwrap());
    assert_eq!(
        store.get_api_key(a.id, k.id).await.unwrap().unwrap().scopes,
        edited.scopes
    );

    let fresh = GeneratedKey::new(KeyType::Personal);
    edited.display_prefix = fresh.display_prefix.clone();
    edited.rotated_at = Some(now());
    assert!(
        store
            .rotate_api_key(a.id, &edited, &fresh.hash)
            .await
            .unwrap()
    );
    assert!(
        store.find_api_key_by_hash(&hash).await.unwrap().is_none(),
        "old secret gone at once"
    );
    assert!(
        store
            .find_api_key_by_hash(&fresh.hash)
            .await
            .unwrap()
            .is_some()
    );

    edited.revoked_at = Some(now());
    assert!(store.update_api_key(a.id, &edited).await.unwrap());
    assert!(
        !store
            .rotate_api_key(a.id, &edited, &GeneratedKey::new(KeyType::Personal).hash)
            .await
            .unwrap(),
        "revoked keys cannot be rotated"
    );

    let used = now();
    store.touch_api_key(k.id, used).await.unwrap();
    assert_eq!(
        store
            .get_api_key(a.id, k.id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(used)
    );
}

pub async fn lists_are_paginated_newest_first_with_totals(store: SqlStore) {
    let a = user(&store).await;
    for i in 0..5 {
        let (mut k, h) = api_key(a.id, &format!("k{i}"));
        k.created_at += Duration::milliseconds(i);
        store.insert_api_key(&k, &h).await.unwrap();
        let mut d = device(a.id, &format!("d{i}"));
        d.created_at += Duration::milliseconds(i);
        store.insert_device(&d).await.unwrap();
    }
    let p1 = store
        .list_devices(a.id, PageRequest { page: 1, limit: 2 })
        .await
        .unwrap();
    assert_eq!((p1.total, p1.total_pages()), (5, 3));
    assert_eq!(
        p1.items.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
        ["d4", "d3"]
    );
    let p3 = store
        .list_devices(a.id, PageRequest { page: 3, limit: 2 })
        .await
        .unwrap();
    assert_eq!(p3.items.len(), 1);
    let beyond = store
        .list_devices(a.id, PageRequest { page: 9, limit: 2 })
        .await
        .unwrap();
    assert!(beyond.items.is_empty());
    assert_eq!(beyond.total, 5);
    let keys = store
        .list_api_keys(a.id, PageRequest { page: 2, limit: 4 })
        .await
        .unwrap();
    assert_eq!(keys.items.len(), 1);
    assert_eq!(keys.items[0].name, "k0");
    let other = user(&store).await;
    assert_eq!(
        store
            .list_devices(other.id, PageRequest::default())
            .await
            .unwrap()
            .total,
        0
    );
}

pub async fn devices_round_trip_every_field_and_stay_in_their_tenant(store: SqlStore) {
    let (a, b) = (user(&store).await, user(&store).await);
    let d = device(a.id, "cam");
    store.insert_device(&d).await.unwrap();
    assert_eq!(store.get_device(a.id, d.id).await.unwrap().unwrap(), d);
    assert!(store.get_device(b.id, d.id).await.unwrap().is_none());

    let mut changed = d.clone();
    changed.name = "cam 2".into();
    changed.schedule = None;
    changed.credentials = None;
    changed.latitude = None;
    changed.tags.clear();
    changed.allow_plain_basic_auth = true;
    assert!(
        !store
            .update_device(
                b.id,
                &Device {
                    user_id: b.id,
                    ..changed.clone()
                }
            )
            .await
            .unwrap()
    );
    assert!(store.update_device(a.id, &changed).await.unwrap());
    assert_eq!(
        store.get_device(a.id, d.id).await.unwrap().unwrap(),
        changed
    );

    assert!(
        store
            .set_device_status(a.id, d.id, DeviceStatus::Online)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_device(a.id, d.id).await.unwrap().unwrap().status,
        DeviceStatus::Online
    );
    assert!(!store.delete_device(b.id, d.id).await.unwrap());
    assert!(store.delete_device(a.id, d.id).await.unwrap());
    assert!(store.get_device(a.id, d.id).await.unwrap().is_none());
}

pub async fn scenes_filter_by_device_and_go_with_their_device(store: SqlStore) {
    let (a, b) = (user(&store).await, user(&store).await);
    let (d1, d2) = (device(a.id, "one"), device(a.id, "two"));
    store.insert_device(&d1).await.unwrap();
    store.insert_device(&d2).await.unwrap();
    let s1 = scene(a.id, d1.id, "queue");
    let s2 = scene(a.id, d2.id, "checkout");
    store.insert_scene(&s1).await.unwrap();
    store.insert_scene(&s2).await.unwrap();
    assert_eq!(store.get_scene(a.id, s1.id).await.unwrap().unwrap(), s1);
    assert!(store.get_scene(b.id, s1.id).await.unwrap().is_none());
    assert_eq!(
        store
            .list_scenes(a.id, None, PageRequest::default())
            .await
            .unwrap()
            .total,
        2
    );
    let only = store
        .list_scenes(a.id, Some(d1.id), PageRequest::default())
        .await
        .unwrap();
    assert_eq!((only.total, only.items[0].id), (1, s1.id));

    let mut edited = s1.clone();
    edited.status = SceneStatus::Inactive;
    edited.parameters.tracking_max_age_seconds = 12.0;
    assert!(store.update_scene(a.id, &edited).await.unwrap());
    assert_eq!(store.get_scene(a.id, s1.id).await.unwrap().unwrap(), edited);
    assert!(!store.delete_scene(b.id, s2.id).await.unwrap());

    assert!(store.delete_device(a.id, d1.id).await.unwrap());
    assert!(
        store.get_scene(a.id, s1.id).await.unwrap().is_none(),
        "scenes are deleted with their device"
    );
    assert!(store.delete_scene(a.id, s2.id).await.unwrap());
}

pub async fn ping_answers(store: SqlStore) {
    store.ping().await.unwrap();
}

macro_rules! for_each_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $test() { super::$test(crate::backends::sqlite().await).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $test() { super::$test(crate::backends::postgres().await).await })*
        }
    };
}

for_each_backend!(
    users_are_unique_by_email_and_round_trip,
    sessions_are_revoked_only_by_their_owner,
    api_keys_are_found_by_hash_scoped_by_owner_and_rotated,
    lists_are_paginated_newest_first_with_totals,
    devices_round_trip_every_field_and_stay_in_their_tenant,
    scenes_filter_by_device_and_go_with_their_device,
    ping_answers,
);
