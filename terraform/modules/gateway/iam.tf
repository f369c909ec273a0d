# The gateway process may read snapshot objects and nothing else: it only
# presigns GET links, and a presigned URL carries the signer's permissions,
# so s3:GetObject on the bucket's objects is exactly what the links need
# (kms:Decrypt through S3 because the objects are SSE-KMS encrypted).
# The metrics sidecar shares the task role and writes its EMF events to the
# one prometheus log group.

data "aws_iam_policy_document" "task" {
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
      values   = ["s3.${data.aws_region.current.region}.amazonaws.com"]
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

  name                = "${var.name}-gateway"
  kms_key_arn         = var.kms_key_arn
  ecr_repository_arns = var.ecr_repository_arns
  log_group_arns      = [var.log_group_arn, var.metrics_agent_log_group_arn]
  secret_arns         = values(local.gateway_secrets)
  ssm_parameter_arns  = [var.metrics_agent_parameter_arns.agent, var.metrics_agent_parameter_arns.prometheus]
  attach_task_policy  = true
  task_policy_json    = data.aws_iam_policy_document.task.json
}
