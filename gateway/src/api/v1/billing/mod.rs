//! `/api/v1/billing`: the billing dashboard over the usage ledger's
//! aggregates (the four features by their names): this month's quota, a
//! period's summary overall and per device, the ledger's events, the trend by
//! day, ISO week or month, period-over-period comparison and the month-end
//! forecast. Figures are the ledger's: a running analysis appears minute by
//! minute, about a minute and a half behind (the usage API and the quota
//! checks add the running minute). Scope `billing:read`.

mod dto;

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Days, Months, NaiveDate, Utc};
use panoptes_shared::Error;
use panoptes_shared::domain::api_key::Scope;
use panoptes_shared::domain::billing::{
    FORECAST_METHOD, Granularity, Totals, compare, days_in_month, forecast, trend,
};
use panoptes_shared::domain::metrics_history::TimeRange;
use panoptes_shared::domain::page::PageRequest;
use panoptes_shared::domain::plan::{PlanLimits, billing_period};
use panoptes_shared::domain::usage::Feature;
use panoptes_shared::ids::DeviceId;
use panoptes_shared::ports::UsageFilter;
use poem_openapi::OpenApi;
use poem_openapi::param::Query;
use uuid::Uuid;

pub use dto::*;

use super::ApiTags;
use super::usage::{FeatureUsageDto, allowance, caller_devices, checked_period_named};
use crate::auth::Caller;
use crate::auth::schemes::SessionOrKey;
use crate::http::envelope::Reply;
use crate::http::error::{ApiResult, ReadErrors};
use crate::state::AppState;

pub struct BillingApi {
    pub state: AppState,
}

fn limits_totals(l: &PlanLimits) -> Totals {
    Feature::ALL.iter().map(|&f| (f, f.of(l))).collect()
}

fn period_first_day(period: &str) -> NaiveDate {
    NaiveDate::parse_from_str(&format!("{period}-01"), "%Y-%m-%d").unwrap_or(NaiveDate::MIN)
}

fn period_of(day: NaiveDate) -> String {
    format!("{:04}-{:02}", day.year(), day.month())
}

/// A `startDate` / `endDate`: `YYYY-MM-DD`, or an RFC 3339 time (its UTC day).
fn day_param(name: &str, raw: Option<String>) -> Result<Option<NaiveDate>, Error> {
    raw.map(|s| {
        let s = s.trim();
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .or_else(|_| {
                chrono::DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc).date_naive())
            })
            .map_err(|_| {
                Error::validation(
                    name,
                    format!("must be a date YYYY-MM-DD or an RFC 3339 time, not `{s}`"),
                )
            })
    })
    .transpose()
}

/// `billingPeriod` (default the current one) that has begun: the period,
/// its first day and today (UTC).
fn started_period(raw: Option<String>) -> Result<(String, NaiveDate, NaiveDate), Error> {
    let period = checked_period_named("billingPeriod", raw)?;
    let first = period_first_day(&period);
    let today = panoptes_shared::time::now().date_naive();
    if first > today {
        return Err(Error::validation(
            "billingPeriod",
            "must not be in the future",
        ));
    }
    Ok((period, first, today))
}

/// Most buckets a trend returns.
const MAX_BUCKETS: i64 = 400;

impl BillingApi {
    /// `deviceId` as the caller may see it: one of their devices, or a
    /// deleted one their ledger still holds (404 otherwise, another
    /// tenant's included); a device-bound key only its own.
    async fn device(
        &self,
        caller: &Caller,
        asked: Option<Uuid>,
    ) -> Result<Option<DeviceId>, Error> {
        let Some(d) = asked.map(DeviceId) else {
            return Ok(caller.device_binding());
        };
        if !caller.may_reach(d) {
            return Err(Error::NotFound("device"));
        }
        let store = &self.state.store;
        if store.get_device(caller.user_id, d).await?.is_some() {
            return Ok(Some(d));
        }
        let filter = UsageFilter {
            device: Some(d),
            ..UsageFilter::default()
        };
        let any = store
            .list_usage_events(caller.user_id, &filter, PageRequest { page: 1, limit: 1 })
            .await?;
        if any.total > 0 {
            Ok(Some(d))
        } else {
            Err(Error::NotFound("device"))
        }
    }

    async fn totals(&self, caller: &Caller, period: &str) -> Result<Totals, Error> {
        self.state
            .store
            .usage_totals(caller.user_id, caller.device_binding(), period)
            .await
    }

    async fn daily(
        &self,
        caller: &Caller,
        device: Option<DeviceId>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<BTreeMap<NaiveDate, Totals>, Error> {
        self.state
            .store
            .usage_daily(caller.user_id, device, from, to)
            .await
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Billing")]
impl BillingApi {
    /// This month's quota over all your devices: used, limit, balance and
    /// whether it is exceeded, per feature. Scope `billing:read`.
    #[oai(
        path = "/billing/monthly-quota",
        method = "get",
        operation_id = "getMonthlyQuota"
    )]
    async fn monthly_quota(
        &self,
        auth: SessionOrKey,
    ) -> ApiResult<Reply<UserQuotaDto>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::BillingRead)?;
        let (period, resets_at) = billing_period(panoptes_shared::time::now());
        let devices = caller_devices(&self.state, caller).await?;
        let limits = allowance(&self.state, &devices, &period).await?;
        let used = self.totals(caller, &period).await?;
        let of =
            |f: Feature| FeatureUsageDto::of(used.get(&f).copied().unwrap_or(0), f.of(&limits));
        Ok(Reply::new(
            "Monthly quota",
            UserQuotaDto {
                user_id: caller.user_id.0,
                period,
                resets_at,
                devices: devices.len() as u64,
                analysis_seconds: of(Feature::AnalysisSeconds),
                alert_count: of(Feature::AlertCount),
                attribute_count: of(Feature::AttributeCount),
                vlm_tokens: of(Feature::VlmTokens),
            },
        ))
    }

    /// Limits and usage this month, flat (legacy shape; prefer
    /// `/billing/monthly-quota`). Scope `billing:read`.
    #[oai(
        path = "/billing/quota",
        method = "get",
        operation_id = "getQuotaLegacy"
    )]
    async fn quota(&self, auth: SessionOrKey) -> ApiResult<Reply<LegacyQuotaDto>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::BillingRead)?;
        let (period, _) = billing_period(panoptes_shared::time::now());
        let devices = caller_devices(&self.state, caller).await?;
        let limits = allowance(&self.state, &devices, &period).await?;
        let used = self.totals(caller, &period).await?;
        Ok(Reply::new(
            "Quota",
            LegacyQuotaDto {
                period,
                limits: FeatureTotalsDto::from(&limits_totals(&limits)),
                usage: FeatureTotalsDto::from(&used),
            },
        ))
    }

    /// A billing period's usage per feature, and each feature's share of
    /// this month's allowance (`billingPeriod=YYYY-MM`, default the current
    /// one; anything else is 400). Scope `billing:read`.
    #[oai(
        path = "/billing/summary",
        method = "get",
        operation_id = "getBillingSummary"
    )]
    async fn summary(
        &self,
        auth: SessionOrKey,
        /// `YYYY-MM` (UTC); default the current period.
        #[oai(name = "billingPeriod")]
        billing_period_param: Query<Option<String>>,
    ) -> ApiResult<Reply<SummaryDto>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::BillingRead)?;
        let period = checked_period_named("billingPeriod", billing_period_param.0)?;
        let devices = caller_devices(&self.state, caller).await?;
        let limits = allowance(&self.state, &devices, &period).await?;
        let used = self.totals(caller, &period).await?;
        let by_device = self
            .state
            .store
            .usage_by_device(caller.user_id, &period)
            .await?
            .into_iter()
            .filter(|(d, _)| caller.may_reach(*d))
            .count();
        let t = FeatureTotalsDto::from(&used);
        Ok(Reply::new(
            "Billing summary",
            SummaryDto {
                billing_period: period,
                analysis_seconds: t.analysis_seconds,
                alert_count: t.alert_count,
                attribute_count: t.attribute_count,
                vlm_tokens: t.vlm_tokens,
                usage_by_type: Feature::ALL
                    .iter()
                    .map(|&f| {
                        let (u, l) = (used.get(&f).copied().unwrap_or(0), f.of(&limits));
                        UsageByTypeDto {
                            kind: f.into(),
                            used: u,
                            limit: l,
                            percentage: match (u, l) {
                                (0, 0) => 0.0,
                                (_, 0) => 100.0,
                                _ => u as f64 * 100.0 / l as f64,
                            },
                        }
                    })
                    .collect(),
                devices_with_usage: by_device as u64,
            },
        ))
    }

    /// A billing period's usage per device (deleted devices included, with
    /// `deleted: true`), most analysis first. Scope `billing:read`.
    #[oai(
        path = "/billing/summary/by-device",
        method = "get",
        operation_id = "getBillingSummaryByDevice"
    )]
    async fn by_device(
        &self,
        auth: SessionOrKey,
        /// `YYYY-MM` (UTC); default the current period.
        #[oai(name = "billingPeriod")]
        billing_period_param: Query<Option<String>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))] page: Query<
            Option<u32>,
        >,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> ApiResult<Reply<Vec<DeviceSummaryDto>>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::BillingRead)?;
        let period = checked_period_named("billingPeriod", billing_period_param.0)?;
        let request = super::page(page.0, limit.0)?;
        let devices: HashMap<DeviceId, _> = caller_devices(&self.state, caller)
            .await?
            .into_iter()
            .map(|d| (d.id, d))
            .collect();
        let mut rows: Vec<DeviceSummaryDto> = self
            .state
            .store
            .usage_by_device(caller.user_id, &period)
            .await?
            .into_iter()
            .filter(|(d, _)| caller.may_reach(*d))
            .map(|(id, t)| {
                let f = FeatureTotalsDto::from(&t);
                let device = devices.get(&id);
                DeviceSummaryDto {
                    device_id: id.0,
                    device_name: device.map(|d| d.name.clone()),
                    plan: device.map(|d| d.plan.into()),
                    deleted: device.is_none(),
                    analysis_seconds: f.analysis_seconds,
                    alert_count: f.alert_count,
                    attribute_count: f.attribute_count,
                    vlm_tokens: f.vlm_tokens,
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            b.analysis_seconds
                .cmp(&a.analysis_seconds)
                .then(a.device_id.cmp(&b.device_id))
        });
        let total = rows.len() as u64;
        let items = rows
            .into_iter()
            .skip(request.offset() as usize)
            .take(request.limit as usize)
            .collect();
        Ok(Reply::page(
            "Usage by device",
            panoptes_shared::domain::page::Page {
                items,
                total,
                request,
            },
        ))
    }

    /// The usage ledger's events, newest first, filtered by device, feature
    /// and time (`startDate`, `endDate`: RFC 3339). Scope `billing:read`.
    #[oai(
        path = "/billing/usage",
        method = "get",
        operation_id = "listUsageEvents"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn usage(
        &self,
        auth: SessionOrKey,
        #[oai(name = "deviceId")] device_id: Query<Option<Uuid>>,
        feature: Query<Option<FeatureName>>,
        #[oai(name = "startDate")] start_date: Query<Option<chrono::DateTime<Utc>>>,
        #[oai(name = "endDate")] end_date: Query<Option<chrono::DateTime<Utc>>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))] page: Query<
            Option<u32>,
        >,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> ApiResult<Reply<Vec<UsageEventDto>>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::BillingRead)?;
        let filter = UsageFilter {
            device: self.device(caller, device_id.0).await?,
            feature: feature.0.map(Into::into),
            range: TimeRange::new(start_date.0, end_date.0)?,
        };
        let request = super::page(page.0, limit.0)?;
        let events = self
            .state
            .store
            .list_usage_events(caller.user_id, &filter, request)
            .await?;
        Ok(Reply::page(
            "Usage events",
            panoptes_shared::domain::page::Page {
                items: events.items.iter().map(UsageEventDto::from).collect(),
                total: events.total,
                request: events.request,
            },
        ))
    }

    /// Usage per day, ISO week (from Monday) or month between `startDate`
    /// and `endDate` (`YYYY-MM-DD`, inclusive; default the last 30 days, 12
    /// weeks or 12 months to today), optionally of one device; every bucket
    /// of the range is present. Month buckets are whole months, read from
    /// the monthly aggregates. Scope `billing:read`.
    #[oai(
        path = "/billing/dashboard/trend",
        method = "get",
        operation_id = "getUsageTrend"
    )]
    async fn trend(
        &self,
        auth: SessionOrKey,
        granularity: Query<Option<GranularityDto>>,
        #[oai(name = "startDate")] start_date: Query<Option<String>>,
        #[oai(name = "endDate")] end_date: Query<Option<String>>,
        #[oai(name = "deviceId")] device_id: Query<Option<Uuid>>,
    ) -> ApiResult<Reply<TrendDto>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::BillingRead)?;
        let g = granularity.0.unwrap_or(GranularityDto::Day);
        let granularity = match g {
            GranularityDto::Day => Granularity::Day,
            GranularityDto::Week => Granularity::Week,
            GranularityDto::Month => Granularity::Month,
        };
        let device = self.device(caller, device_id.0).await?;
        let today = panoptes_shared::time::now().date_naive();
        let end = day_param("endDate", end_date.0)?.unwrap_or(today);
        let start = match day_param("startDate", start_date.0)? {
            Some(s) => s,
            None => match granularity {
                Granularity::Day => end - Days::new(29),
                Granularity::Week => end - Days::new(7 * 11),
                Granularity::Month => end.with_day(1).unwrap_or(end) - Months::new(11),
            },
        };
        if start > end {
            return Err(Error::validation("endDate", "must not be before startDate").into());
        }
        let span = (end - start).num_days();
        let buckets = match granularity {
            Granularity::Day => span + 1,
            Granularity::Week => span / 7 + 2,
            Granularity::Month => span / 28 + 2,
        };
        if buckets > MAX_BUCKETS {
            return Err(Error::validation(
                "startDate",
                format!(
                    "the range holds more than {MAX_BUCKETS} {} buckets",
                    granularity.as_str()
                ),
            )
            .into());
        }
        let points = if granularity == Granularity::Month {
            let (first, last) = (start.with_day(1).unwrap_or(start), end);
            let monthly = self
                .state
                .store
                .usage_monthly(caller.user_id, device, &period_of(first), &period_of(last))
                .await?;
            let mut out = Vec::new();
            let mut m = first;
            while m <= last {
                let t = monthly.get(&period_of(m)).cloned().unwrap_or_default();
                out.push(TrendPointDto::new(m, &t));
                m = m + Months::new(1);
            }
            out
        } else {
            let daily = self.daily(caller, device, start, end).await?;
            trend(&daily, start, end, granularity)
                .iter()
                .map(|(d, t)| TrendPointDto::new(*d, t))
                .collect()
        };
        Ok(Reply::new(
            "Usage trend",
            TrendDto {
                granularity: g,
                start_date: start,
                end_date: end,
                device_id: device.map(|d| d.0),
                points,
            },
        ))
    }

    /// A billing period against the one before (`billingPeriod`, default
    /// the current one). For the current month, the days so far against the
    /// same days of the previous month; for a past month, the whole month
    /// against the whole previous month. Scope `billing:read`.
    #[oai(
        path = "/billing/dashboard/comparison",
        method = "get",
        operation_id = "getUsageComparison"
    )]
    async fn comparison(
        &self,
        auth: SessionOrKey,
        /// `YYYY-MM` (UTC); default the current period.
        #[oai(name = "billingPeriod")]
        billing_period_param: Query<Option<String>>,
    ) -> ApiResult<Reply<ComparisonDto>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::BillingRead)?;
        let (period, first, today) = started_period(billing_period_param.0)?;
        let prev_first = first - Months::new(1);
        let month_end = first + Months::new(1) - Days::new(1);
        let (to, prev_to, method) = if today <= month_end {
            // So far this month, against as many days of the previous one.
            let elapsed = (today - first).num_days() as u64;
            let prev_end = prev_first + Months::new(1) - Days::new(1);
            (
                today,
                (prev_first + Days::new(elapsed)).min(prev_end),
                "month to date against the same days of the previous month",
            )
        } else {
            (
                month_end,
                prev_first + Months::new(1) - Days::new(1),
                "whole month against the whole previous month",
            )
        };
        let device = caller.device_binding();
        let sum = |m: BTreeMap<NaiveDate, Totals>| {
            let mut t = Totals::new();
            for v in m.values() {
                panoptes_shared::domain::billing::add_into(&mut t, v);
            }
            t
        };
        let current = sum(self.daily(caller, device, first, to).await?);
        let previous = sum(self.daily(caller, device, prev_first, prev_to).await?);
        Ok(Reply::new(
            "Usage comparison",
            ComparisonDto {
                method: method.into(),
                current: ComparedPeriodDto {
                    billing_period: period,
                    from: first,
                    to,
                    usage: FeatureTotalsDto::from(&current),
                },
                previous: ComparedPeriodDto {
                    billing_period: period_of(prev_first),
                    from: prev_first,
                    to: prev_to,
                    usage: FeatureTotalsDto::from(&previous),
                },
                changes: compare(&current, &previous)
                    .iter()
                    .map(|(f, c)| ChangeDto::new(*f, c))
                    .collect(),
            },
        ))
    }

    /// Month-end usage projected from the month-to-date daily rate, against
    /// this month's allowance (`billingPeriod`, default the current one; a
    /// past month is complete: projected = used). Scope `billing:read`.
    #[oai(
        path = "/billing/dashboard/forecast",
        method = "get",
        operation_id = "getUsageForecast"
    )]
    async fn forecast(
        &self,
        auth: SessionOrKey,
        /// `YYYY-MM` (UTC); default the current period.
        #[oai(name = "billingPeriod")]
        billing_period_param: Query<Option<String>>,
    ) -> ApiResult<Reply<ForecastDto>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::BillingRead)?;
        let (period, first, today) = started_period(billing_period_param.0)?;
        let days = days_in_month(first);
        let elapsed = if today < first + Months::new(1) {
            (today - first).num_days() as u32 + 1
        } else {
            days
        };
        let devices = caller_devices(&self.state, caller).await?;
        let limits = limits_totals(&allowance(&self.state, &devices, &period).await?);
        let used = self.totals(caller, &period).await?;
        let projections = forecast(first, elapsed, &used, &limits);
        Ok(Reply::new(
            "Usage forecast",
            ForecastDto {
                billing_period: period,
                method: FORECAST_METHOD.into(),
                days_elapsed: elapsed,
                days_in_month: days,
                features: projections
                    .iter()
                    .map(|(f, p)| ProjectionDto::new(*f, p))
                    .collect(),
            },
        ))
    }

    /// The quota ledger: every change to your devices' allowances (admin
    /// grants, unlimited, disabled, your caps) with who, when and why,
    /// newest first; optionally one device's. Scope `billing:read`.
    #[oai(
        path = "/billing/transactions",
        method = "get",
        operation_id = "listQuotaTransactions"
    )]
    async fn transactions(
        &self,
        auth: SessionOrKey,
        #[oai(name = "deviceId")] device_id: Query<Option<Uuid>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "1000000")))] page: Query<
            Option<u32>,
        >,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u32>>,
    ) -> ApiResult<Reply<Vec<QuotaChangeDto>>, ReadErrors> {
        let caller = auth.caller();
        caller.require(Scope::BillingRead)?;
        let device = match device_id.0.map(DeviceId) {
            Some(d) if !caller.may_reach(d) => return Err(Error::NotFound("device").into()),
            Some(d) => Some(d),
            None => caller.device_binding(),
        };
        let request = super::page(page.0, limit.0)?;
        let changes = self
            .state
            .store
            .list_quota_changes(caller.user_id, device, request)
            .await?;
        Ok(Reply::page(
            "Quota transactions",
            panoptes_shared::domain::page::Page {
                items: changes.items.iter().map(QuotaChangeDto::from).collect(),
                total: changes.total,
                request: changes.request,
            },
        ))
    }
}
