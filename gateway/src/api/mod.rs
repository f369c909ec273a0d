//! The HTTP API: every operation under `/api/v1`, plus the operational
//! endpoints. [`service`] assembles the OpenAPI service from which both the
//! routes and the committed `openapi/openapi.json` are generated.

pub mod ops;
pub mod v1;

use poem_openapi::OpenApiService;

use crate::state::AppState;

pub const TITLE: &str = "Panoptes API";

/// The description on top of the OpenAPI document, with the error-code table.
fn description() -> String {
    let mut text = String::from(
        "Multi-tenant video analytics: register RTSP cameras, draw queue and checkout zones, \
         and get people counts and wait times.\n\n\
         **Auth**: `Authorization: Bearer <session token | API key>`. API-key management accepts \
         session tokens only.\n\n\
         **Envelope**: every response is `{success, statusCode, message, data, meta: {timestamp, requestId}}`; \
         lists add `meta.pagination {page, limit, total, totalPages}` (`page` >= 1, `limit` 1-100, default 20). \
         Errors add `error: {code, details}`.\n\n\
         **Error codes**\n\n| code | status | meaning |\n|---|---|---|\n",
    );
    for code in crate::http::error::ErrorCode::all() {
        text.push_str(&format!(
            "| `{}` | {} | {} |\n",
            code.as_str(),
            code.status().as_u16(),
            code.meaning()
        ));
    }
    text
}

pub type Apis = (
    v1::auth::AuthApi,
    v1::api_keys::ApiKeysApi,
    v1::devices::DevicesApi,
    v1::scenes::ScenesApi,
    v1::edge::EdgeApi,
    v1::analytics::AnalyticsApi,
    v1::alerts::AlertsApi,
    v1::insights::InsightsApi,
    v1::webhooks::WebhooksApi,
    v1::usage::UsageApi,
    v1::billing::BillingApi,
    v1::streams::StreamsApi,
    v1::admin::AdminApi,
    ops::OpsApi,
);

/// The OpenAPI service over `state` (routes and document).
pub fn service(state: AppState) -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            v1::auth::AuthApi {
                state: state.clone(),
            },
            v1::api_keys::ApiKeysApi {
                state: state.clone(),
            },
            v1::devices::DevicesApi {
                state: state.clone(),
            },
            v1::scenes::ScenesApi {
                state: state.clone(),
            },
            v1::edge::EdgeApi {
                state: state.clone(),
            },
            v1::analytics::AnalyticsApi {
                state: state.clone(),
            },
            v1::alerts::AlertsApi {
                state: state.clone(),
            },
            v1::insights::InsightsApi {
                state: state.clone(),
            },
            v1::webhooks::WebhooksApi {
                state: state.clone(),
            },
            v1::usage::UsageApi {
                state: state.clone(),
            },
            v1::billing::BillingApi {
                state: state.clone(),
            },
            v1::streams::StreamsApi {
                state: state.clone(),
            },
            v1::admin::AdminApi {
                state: state.clone(),
            },
            ops::OpsApi { state },
        ),
        TITLE,
        env!("CARGO_PKG_VERSION"),
    )
    .description(description())
    .license(
        poem_openapi::LicenseObject::new(env!("CARGO_PKG_LICENSE"))
            .url("https://www.apache.org/licenses/LICENSE-2.0"),
    )
    .server("/")
}
