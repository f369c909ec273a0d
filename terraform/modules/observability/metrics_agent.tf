# How panoptes_sse_streams and panoptes_jobs_lag reach CloudWatch.
#
# A CloudWatch agent sidecar runs in the gateway, schedule and detect
# tasks. It scrapes the process's Prometheus /metrics over the task's
# loopback (awsvpc: the containers of a task share one network namespace,
# so no port is opened to anything), keeps only the series listed below
# (metric_relabel_configs) and writes them as embedded-metric-format (EMF)
# log events to <prefix>/prometheus, which CloudWatch turns into metrics in
# var.metric_namespace with the dimensions Environment and Service.
# No PutMetricData permission is needed: the agent only writes log events.
#
# Why the queue lag comes from the schedule role: every worker process
# reports the same cluster-wide gauges of the frame queue (waiting + pending
# jobs of the `detect` consumer group over the 4 shards of
# panoptes:v1:jobs:{frames}:<n>), refreshed on each heartbeat. The detectors
# themselves cannot be the source: when they are scaled to zero nothing would
# export the lag and nothing would ever scale them up again. The schedule
# role runs on Fargate with at least one task at all times (the workers
# module enforces min >= 1), so the lag keeps flowing at zero detectors.
# Several schedule replicas report identical values; alarms use Maximum.
#
# The agent and Prometheus configurations are SSM SecureString parameters
# (the documented way to feed the agent on ECS: CW_CONFIG_CONTENT and
# PROMETHEUS_CONFIG_CONTENT injected as `secrets`).

data "aws_region" "current" {}

locals {
  scraped = {
    gateway = {
      port = 8080
      metrics = [
        "panoptes_sse_streams",
        "panoptes_sse_subscribed_users",
        "panoptes_http_connections_max",
        "process_open_fds",
      ]
    }
    # Frames each detector finished (a counter: the agent sends the increase
    # since its previous scrape). Its sum tells a pool that processes nothing
    # (idle) from one that keeps up with a trickle, which the sampled lag
    # gauge cannot; its sample count tells how many detectors report.
    detect = {
      port    = 9464
      metrics = ["panoptes_detect_frames_total"]
    }
    schedule = {
      port = 9464
      metrics = [
        "panoptes_jobs_lag",
        "panoptes_jobs_waiting",
        "panoptes_jobs_pending",
        "panoptes_jobs_oldest_age_seconds",
        "panoptes_jobs_dead_letters",
      ]
    }
  }

  metric_units = {
    panoptes_sse_streams             = "Count"
    panoptes_sse_subscribed_users    = "Count"
    panoptes_http_connections_max    = "Count"
    process_open_fds                 = "Count"
    panoptes_jobs_lag                = "Count"
    panoptes_jobs_waiting            = "Count"
    panoptes_jobs_pending            = "Count"
    panoptes_jobs_oldest_age_seconds = "Seconds"
    panoptes_jobs_dead_letters       = "Count"
    panoptes_detect_frames_total     = "Count"
  }

  prometheus_config = {
    for service, s in local.scraped : service => yamlencode({
      global = {
        scrape_interval = "${var.scrape_interval_seconds}s"
        scrape_timeout  = "5s"
      }
      scrape_configs = [{
        job_name     = "panoptes-${service}"
        metrics_path = "/metrics"
        static_configs = [{
          targets = ["127.0.0.1:${s.port}"]
          labels = {
            Environment = var.environment
            Service     = service
          }
        }]
        metric_relabel_configs = [{
          source_labels = ["__name__"]
          regex         = join("|", s.metrics)
          action        = "keep"
        }]
      }]
    })
  }

  agent_config = {
    for service, s in local.scraped : service => jsonencode({
      agent = {
        region = data.aws_region.current.region
      }
      logs = {
        force_flush_interval = 5
        metrics_collected = {
          prometheus = {
            log_group_name         = aws_cloudwatch_log_group.prometheus.name
            prometheus_config_path = "env:PROMETHEUS_CONFIG_CONTENT"
            emf_processor = {
              metric_namespace = var.metric_namespace
              metric_unit      = { for m in s.metrics : m => local.metric_units[m] }
              metric_declaration = [{
                source_labels    = ["Service"]
                label_matcher    = "^${service}$"
                dimensions       = [["Environment", "Service"]]
                metric_selectors = [for m in s.metrics : "^${m}$"]
              }]
            }
          }
        }
      }
    })
  }
}

resource "aws_ssm_parameter" "agent_config" {
  for_each = local.scraped

  name        = "/${var.name}/metrics-agent/${each.key}/cloudwatch-agent"
  description = "CloudWatch agent configuration of the ${each.key} tasks' metrics sidecar (CW_CONFIG_CONTENT)"
  type        = "SecureString"
  key_id      = var.kms_key_arn
  value       = local.agent_config[each.key]
}

resource "aws_ssm_parameter" "prometheus_config" {
  for_each = local.scraped

  name        = "/${var.name}/metrics-agent/${each.key}/prometheus"
  description = "Prometheus scrape configuration of the ${each.key} tasks' metrics sidecar (PROMETHEUS_CONFIG_CONTENT)"
  type        = "SecureString"
  key_id      = var.kms_key_arn
  value       = local.prometheus_config[each.key]
}
