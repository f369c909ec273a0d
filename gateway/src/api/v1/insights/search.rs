//! `POST /analysis/insights/search`: a plain-language question read by the
//! configured model as filters plus words, or (no model, or it failed) the
//! question's own words, then run as an insight list over the full-text
//! index.

use panoptes_shared::Error;
use panoptes_shared::domain::page::PageRequest;
use panoptes_shared::ids::DeviceId;
use panoptes_shared::insights::{SearchPlan, fallback_plan, plan_from_answer, search_request};
use uuid::Uuid;

use super::InsightsApi;
use super::dto::{SearchInterpretationDto, SearchResultDto};
use crate::auth::Caller;

/// Device names offered to the model (the first page of the caller's).
const CAMERAS_OFFERED: u32 = 100;

/// The device a name refers to: an exact (case-insensitive) match first,
/// then the only device whose name contains it.
fn device_named(devices: &[(DeviceId, String)], name: &str) -> Option<DeviceId> {
    let name = name.to_lowercase();
    if let Some((id, _)) = devices.iter().find(|(_, n)| n.to_lowercase() == name) {
        return Some(*id);
    }
    let mut containing = devices
        .iter()
        .filter(|(_, n)| n.to_lowercase().contains(&name));
    match (containing.next(), containing.next()) {
        (Some((id, _)), None) => Some(*id),
        _ => None,
    }
}

pub(super) async fn run(
    api: &InsightsApi,
    caller: &Caller,
    question: &str,
    page: PageRequest,
) -> Result<SearchResultDto, Error> {
    let state = &api.state;
    let question = question.trim();
    if question.is_empty() {
        return Err(Error::Validation(panoptes_shared::error::FieldError::new(
            "query",
            "must contain a word",
        )));
    }
    let devices: Vec<(DeviceId, String)> = state
        .store
        .list_devices(
            caller.user_id,
            PageRequest {
                page: 1,
                limit: CAMERAS_OFFERED,
            },
        )
        .await?
        .items
        .into_iter()
        .filter(|d| caller.may_reach(d.id))
        .map(|d| (d.id, d.name))
        .collect();
    let (plan, model, fallback_reason) = if state.vlm.provider() == "off" {
        (fallback_plan(question), None, None)
    } else {
        let names: Vec<String> = devices.iter().map(|(_, n)| n.clone()).collect();
        let request = search_request(
            Uuid::new_v4().to_string(),
            question,
            panoptes_shared::time::now(),
            &names,
        );
        match state.vlm.ask(&request).await {
            Ok(answer) => (plan_from_answer(&answer.object), Some(answer.model), None),
            Err(e) => {
                tracing::warn!(error = %e, class = e.class(), "search question not read by the VLM; matching its words");
                (fallback_plan(question), None, Some(e.to_string()))
            }
        }
    };
    let named = plan
        .device_name
        .as_deref()
        .and_then(|n| device_named(&devices, n));
    let mut filter = plan.filter();
    filter.device = caller.device_binding().or(named);
    if let (Some(bound), Some(asked)) = (caller.device_binding(), named)
        && bound != asked
    {
        // A device-bound key asked about another device: nothing to show.
        return Ok(empty(
            question,
            &plan,
            Some(asked.0),
            model,
            fallback_reason,
            page,
        ));
    }
    let found = if filter.q.is_none() && plan.any_term {
        // A fallback with no content word matches nothing.
        None
    } else {
        Some(
            state
                .store
                .list_insights(caller.user_id, &filter, page)
                .await?,
        )
    };
    let Some(found) = found else {
        return Ok(empty(question, &plan, None, model, fallback_reason, page));
    };
    let dtos = api.dtos(caller.user_id, found).await?;
    Ok(SearchResultDto {
        query: question.to_owned(),
        interpretation: SearchInterpretationDto::new(
            &plan,
            named.map(|d| d.0),
            model,
            fallback_reason,
        ),
        insights: dtos.items,
        total: dtos.total,
        page: page.page,
        limit: page.limit,
    })
}

fn empty(
    question: &str,
    plan: &SearchPlan,
    device: Option<Uuid>,
    model: Option<String>,
    fallback_reason: Option<String>,
    page: PageRequest,
) -> SearchResultDto {
    SearchResultDto {
        query: question.to_owned(),
        interpretation: SearchInterpretationDto::new(plan, device, model, fallback_reason),
        insights: Vec::new(),
        total: 0,
        page: page.page,
        limit: page.limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_finds_its_device_exactly_or_as_the_only_one_containing_it() {
        let (a, b) = (DeviceId::new(), DeviceId::new());
        let devices = vec![(a, "Front Counter".to_owned()), (b, "Back Door".to_owned())];
        assert_eq!(device_named(&devices, "front counter"), Some(a));
        assert_eq!(device_named(&devices, "door"), Some(b));
        assert_eq!(device_named(&devices, "o"), None, "ambiguous");
        assert_eq!(device_named(&devices, "garage"), None);
    }
}
