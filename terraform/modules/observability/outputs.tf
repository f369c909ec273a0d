output "log_group_names" {
  description = "Log group name by process kind (gateway, ingest, analytics, notify, schedule, detect, metrics-agent)."
  value       = { for k, g in aws_cloudwatch_log_group.service : k => g.name }
}

output "log_group_arns" {
  description = "Log group ARN by process kind."
  value       = { for k, g in aws_cloudwatch_log_group.service : k => g.arn }
}

output "prometheus_log_group_arn" {
  description = "ARN of the group the metrics agents write EMF events to (their task roles may write only there)."
  value       = aws_cloudwatch_log_group.prometheus.arn
}

output "metrics_agent_parameter_arns" {
  description = "SSM parameter ARNs of the metrics sidecar configuration, by scraped service: { gateway = { agent, prometheus }, schedule = { ... }, detect = { ... } }."
  value = {
    for k in keys(local.scraped) : k => {
      agent      = aws_ssm_parameter.agent_config[k].arn
      prometheus = aws_ssm_parameter.prometheus_config[k].arn
    }
  }
}

output "metric_namespace" {
  description = "CloudWatch namespace of the scraped Panoptes metrics."
  value       = var.metric_namespace
}

output "access_logs_bucket" {
  description = "Bucket receiving ALB (alb/) and S3 server (s3/) access logs."
  # Through the policy, so nothing starts logging before it may write.
  value = aws_s3_bucket_policy.access_logs.bucket
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "dashboard_url" {
  description = "Console URL of the CloudWatch dashboard."
  value       = "https://${local.region}.console.aws.amazon.com/cloudwatch/home?region=${local.region}#dashboards/dashboard/${aws_cloudwatch_dashboard.this.dashboard_name}"
}

output "scrape_interval_seconds" {
  description = "Scrape interval of the metrics sidecars (samples per minute per task = 60 / this)."
  value       = var.scrape_interval_seconds
}
