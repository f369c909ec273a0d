# The detect role writes snapshot JPEGs and reads nothing back: s3:PutObject
# on the bucket's objects, with the data key it needs for SSE-KMS. The
# metrics sidecar shares the task role and writes only to the EMF group.
data "aws_iam_policy_document" "task" {
  statement {
    sid       = "WriteSnapshots"
    actions   = ["s3:PutObject"]
    resources = ["${var.snapshot_bucket_arn}/*"]
  }

  statement {
    sid       = "EncryptSnapshotsThroughS3"
    actions   = ["kms:GenerateDataKey"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }

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

module "roles" {
  source = "../task_roles"

  name                = "${var.name}-detect"
  kms_key_arn         = var.kms_key_arn
  ecr_repository_arns = var.ecr_repository_arns
  log_group_arns      = [var.log_group_arn, var.metrics_agent_log_group_arn]
  secret_arns         = values(local.detect_secrets)
  ssm_parameter_arns  = [var.metrics_agent_parameter_arns.agent, var.metrics_agent_parameter_arns.prometheus]
  attach_task_policy  = true
  task_policy_json    = data.aws_iam_policy_document.task.json
}
