# Operational alarms. The GPU scaling alarms live with their policies in the
# gpu_detectors module; these tell a person that something needs a look.

locals {
  schedule_dimensions = {
    Environment = var.environment
    Service     = "schedule"
  }
}

# The GPU pool scales on panoptes_jobs_lag, published by the schedule tasks'
# sidecar. If it stops arriving the scaling alarms see no data, treat it as
# "not breaching" and hold the pool where it is: this alarm says so.
resource "aws_cloudwatch_metric_alarm" "queue_lag_missing" {
  alarm_name          = "${var.name}-queue-lag-metric-missing"
  alarm_description   = "No panoptes_jobs_lag for 5 minutes: the schedule tasks or their metrics sidecar are down, so the GPU detectors cannot autoscale. Check the schedule service and ${var.log_group_prefix}/metrics-agent."
  namespace           = var.metric_namespace
  metric_name         = "panoptes_jobs_lag"
  dimensions          = local.schedule_dimensions
  statistic           = "SampleCount"
  period              = 60
  evaluation_periods  = 5
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

# Frames older than jobs.max_age_ms (10 s) are dropped: an oldest job past
# 8 s for five minutes means detection is falling behind faster than the
# GPU pool grows (or the pool is at its maximum).
resource "aws_cloudwatch_metric_alarm" "queue_oldest_job" {
  alarm_name          = "${var.name}-queue-oldest-job-age"
  alarm_description   = "The oldest unacknowledged frame job has been older than 8 s for 5 minutes; frames are being dropped as stale. Check the detect service's task count against its maximum and the GPU Auto Scaling group."
  namespace           = var.metric_namespace
  metric_name         = "panoptes_jobs_oldest_age_seconds"
  dimensions          = local.schedule_dimensions
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  comparison_operator = "GreaterThanThreshold"
  threshold           = 8
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "queue_dead_letters" {
  alarm_name          = "${var.name}-queue-dead-letters"
  alarm_description   = "Frame jobs reached the dead letters (failed jobs.max_attempts times). Check the detect logs for the failing jobs."
  namespace           = var.metric_namespace
  metric_name         = "panoptes_jobs_dead_letters"
  dimensions          = local.schedule_dimensions
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "api_5xx" {
  alarm_name          = "${var.name}-api-5xx-rate"
  alarm_description   = "More than 5% of API requests answered 5xx (gateways or ALB) for 5 minutes."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 5
  evaluation_periods  = 5
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  metric_query {
    id          = "rate"
    expression  = "100 * (FILL(target5xx, 0) + FILL(elb5xx, 0)) / requests"
    label       = "5xx %"
    return_data = true
  }

  metric_query {
    id = "requests"

    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      stat        = "Sum"
      period      = 60
    }
  }

  metric_query {
    id = "target5xx"

    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      stat        = "Sum"
      period      = 60
    }
  }

  metric_query {
    id = "elb5xx"

    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_ELB_5XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      stat        = "Sum"
      period      = 60
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "gateway_unhealthy" {
  alarm_name          = "${var.name}-gateway-no-healthy-target"
  alarm_description   = "No gateway passes /readyz: the ALB is failing open to all targets or answering 503. Check store and Redis reachability in the gateway logs."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HealthyHostCount"
  dimensions          = { TargetGroup = var.target_group_arn_suffix, LoadBalancer = var.alb_arn_suffix }
  statistic           = "Minimum"
  period              = 60
  evaluation_periods  = 3
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}
