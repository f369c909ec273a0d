locals {
  # One log group per process kind; the metrics agent sidecars share one.
  log_group_names = {
    gateway       = "${var.log_group_prefix}/gateway"
    ingest        = "${var.log_group_prefix}/ingest"
    analytics     = "${var.log_group_prefix}/analytics"
    notify        = "${var.log_group_prefix}/notify"
    schedule      = "${var.log_group_prefix}/schedule"
    detect        = "${var.log_group_prefix}/detect"
    metrics-agent = "${var.log_group_prefix}/metrics-agent"
  }
}

resource "aws_cloudwatch_log_group" "service" {
  for_each = local.log_group_names

  name              = each.value
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

# Embedded-metric-format events written by the metrics agent sidecars;
# CloudWatch turns the declared fields into the custom metrics.
resource "aws_cloudwatch_log_group" "prometheus" {
  #checkov:skip=CKV_AWS_338:Raw EMF events duplicate the metrics CloudWatch already extracted from them (kept 15 months); a year of them would only add storage cost.
  name              = "${var.log_group_prefix}/prometheus"
  retention_in_days = 7
  kms_key_id        = var.kms_key_arn
}
