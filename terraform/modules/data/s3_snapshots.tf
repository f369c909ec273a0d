# Snapshot JPEGs: the detect role writes them, the analytics role and the
# gateways hand out presigned GET links to them. Private, versioned (an
# overwrite or delete can be undone for snapshot_noncurrent_expiry_days),
# encrypted with the environment's key, expired after snapshot_expiry_days.

data "aws_caller_identity" "current" {}

locals {
  snapshot_bucket = var.snapshot_bucket_name != "" ? var.snapshot_bucket_name : "${var.name}-snapshots-${data.aws_caller_identity.current.account_id}"
}

resource "aws_s3_bucket" "snapshots" {
  #checkov:skip=CKV_AWS_144:Snapshots are short-lived, re-creatable evidence frames (expired after snapshot_expiry_days); a second-region copy is not worth doubling storage and KMS costs.
  #checkov:skip=CKV2_AWS_62:Nothing consumes object events: results reference snapshots by key through the database.
  bucket        = local.snapshot_bucket
  force_destroy = var.force_destroy_buckets
}

resource "aws_s3_bucket_public_access_block" "snapshots" {
  bucket = aws_s3_bucket.snapshots.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "snapshots" {
  bucket = aws_s3_bucket.snapshots.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "snapshots" {
  bucket = aws_s3_bucket.snapshots.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "snapshots" {
  bucket = aws_s3_bucket.snapshots.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }

    # One data key per bucket instead of per object: cuts KMS requests (and
    # their cost) for thousands of small JPEGs a minute.
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "snapshots" {
  bucket = aws_s3_bucket.snapshots.id

  rule {
    id     = "expire-snapshots"
    status = "Enabled"

    filter {}

    expiration {
      days = var.snapshot_expiry_days
    }

    noncurrent_version_expiration {
      noncurrent_days = var.snapshot_noncurrent_expiry_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  rule {
    id     = "remove-expired-delete-markers"
    status = "Enabled"

    filter {}

    expiration {
      expired_object_delete_marker = true
    }
  }

  depends_on = [aws_s3_bucket_versioning.snapshots]
}

resource "aws_s3_bucket_logging" "snapshots" {
  bucket        = aws_s3_bucket.snapshots.id
  target_bucket = var.access_logs_bucket
  target_prefix = "s3/${aws_s3_bucket.snapshots.id}/"
}

data "aws_iam_policy_document" "snapshots" {
  statement {
    sid     = "DenyPlaintextTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.snapshots.arn,
      "${aws_s3_bucket.snapshots.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "snapshots" {
  bucket = aws_s3_bucket.snapshots.id
  policy = data.aws_iam_policy_document.snapshots.json

  depends_on = [aws_s3_bucket_public_access_block.snapshots]
}
