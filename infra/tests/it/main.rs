//! Infra integration tests: one behaviour suite per port, run against every
//! adapter (SQLite and PostgreSQL for the store; memory and Redis for rate
//! limits). PostgreSQL and Redis are real servers: `PANOPTES_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`) and
//! `PANOPTES_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`). A missing
//! server fails the tests; it never skips them. The VLM client is tested
//! against a scripted chat-completions server on loopback (`vlm_suite`).

mod analysis_store_suite;
mod attribute_store_suite;
mod backends;
mod blobs_suite;
mod bus_suite;
mod coord_suite;
mod detections_suite;
mod insight_store_suite;
mod jobs_suite;
mod notify_store_suite;
mod rate_limit_suite;
mod slots_suite;
mod store_suite;
mod test_ca;
mod tls_suite;
mod usage_store_suite;
mod vlm_suite;
