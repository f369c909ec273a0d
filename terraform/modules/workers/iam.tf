# What each role's process may do in AWS:
#  - analytics presigns GET links to snapshots in its results: s3:GetObject
#    (a presigned URL carries the signer's permissions) and kms:Decrypt
#    through S3 for the SSE-KMS objects;
#  - schedule's metrics sidecar writes EMF events to the prometheus group;
#  - ingest and notify need no AWS permission at all (cameras, webhooks,
#    PostgreSQL and Redis are reached over the network with the secrets).
# Only the detect role (gpu_detectors module) may write snapshots.

data "aws_iam_policy_document" "analytics" {
  statement {
    sid       = "PresignSnapshotReads"
    actions   = ["s3:GetObject"]
    resources = ["${var.snapshot_bucket_arn}/*"]
  }

  statement {
    sid       = "DecryptSnapshotsThroughS3"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "schedule" {
  statement {
    sid = "MetricsSidecarWritesEmf"
    actions = [
      "logs:CreateLogStream",
      "logs:DescribeLogStreams",
      "logs:PutLogEvents",
    ]
    resources = [var.prometheus_log_group_arn, "${var.prometheus_log_group_arn}:*"]
  }
}

locals {
  task_policies = {
    ingest    = null
    analytics = data.aws_iam_policy_document.analytics.json
    notify    = null
    schedule  = data.aws_iam_policy_document.schedule.json
  }

  # Static, so the plan knows which roles get a policy before ARNs exist.
  has_task_policy = {
    ingest    = false
    analytics = true
    notify    = false
    schedule  = true
  }
}

module "roles" {
  source   = "../task_roles"
  for_each = local.roles

  name                = "${var.name}-${each.key}"
  kms_key_arn         = var.kms_key_arn
  ecr_repository_arns = var.ecr_repository_arns
  log_group_arns = concat(
    [var.log_group_arns[each.key]],
    each.key == "schedule" ? [var.log_group_arns["metrics-agent"]] : [],
  )
  secret_arns        = values(local.worker_secrets[each.key])
  ssm_parameter_arns = each.key == "schedule" ? [var.metrics_agent_parameter_arns.agent, var.metrics_agent_parameter_arns.prometheus] : []
  attach_task_policy = local.has_task_policy[each.key]
  task_policy_json   = local.task_policies[each.key]
}
