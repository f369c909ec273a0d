# One customer-managed key per environment: Secrets Manager secrets, the
# snapshot bucket, Aurora, ElastiCache, Performance Insights, SSM parameters and
# every log group are encrypted with it, so revoking or auditing access to the
# environment's data is one key policy and one CloudTrail filter.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region

  log_group_arn_patterns = concat(
    ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${var.log_group_prefix}/*"],
    var.extra_log_group_arn_patterns,
  )
}

data "aws_iam_policy_document" "key" {
  # The account's IAM policies decide who else may use the key (the task
  # roles get kms:Decrypt scoped with kms:ViaService in their own policies).
  #checkov:skip=CKV_AWS_109:A key policy's Resource "*" means this key only; the account root statement is what delegates the key to IAM policies.
  #checkov:skip=CKV_AWS_111:A key policy's Resource "*" means this key only; writes are limited to the account's own IAM principals.
  #checkov:skip=CKV_AWS_356:A key policy's Resource "*" means this key only.
  statement {
    sid       = "AccountAdministersKeyThroughIam"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # CloudWatch Logs encrypts log groups itself, so it needs the key in the key
  # policy, bounded to this environment's log groups by encryption context.
  statement {
    sid = "CloudWatchLogsEncryptsThisEnvironmentsGroups"
    actions = [
      "kms:Decrypt*",
      "kms:Describe*",
      "kms:Encrypt*",
      "kms:GenerateDataKey*",
      "kms:ReEncrypt*",
    ]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = local.log_group_arn_patterns
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${var.name}: secrets, snapshots, database, cache and logs"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = var.deletion_window_in_days
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}
