variable "name" {
  description = "Name of the environment (e.g. panoptes-prod), used in resource names."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name))
    error_message = "name must be 3-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "vpc_id" {
  description = "VPC the database and cache live in."
  type        = string
}

variable "database_subnet_ids" {
  description = "Isolated subnets (at least two AZs) for Aurora and ElastiCache."
  type        = list(string)

  validation {
    condition     = length(var.database_subnet_ids) >= 2
    error_message = "database_subnet_ids needs subnets in at least two availability zones."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the secrets, the bucket, Aurora, ElastiCache and their log groups."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "deletion_protection" {
  description = "Protect the Aurora cluster from deletion (a final snapshot is taken whenever it is deleted); turn off only to tear the environment down."
  type        = bool
  default     = true
}

variable "log_group_prefix" {
  description = "Prefix of the environment's log groups (e.g. /panoptes/prod); the Redis logs go under <prefix>/redis/."
  type        = string

  validation {
    condition     = can(regex("^/[A-Za-z0-9_./-]+[^/]$", var.log_group_prefix))
    error_message = "log_group_prefix must start with /, hold only letters, digits, _ . / - and not end with /."
  }
}

variable "log_retention_days" {
  description = "Days the PostgreSQL and Redis logs are kept in CloudWatch."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention period CloudWatch Logs accepts."
  }
}

# ---------------------------------------------------------------- Aurora

variable "postgres_engine_version" {
  description = "Aurora PostgreSQL engine version (major.minor). 16.3 or later lets min ACU be 0 (auto-pause)."
  type        = string
  default     = "16.6"

  validation {
    condition     = can(regex("^1[3-9]\\.[0-9]+$", var.postgres_engine_version))
    error_message = "postgres_engine_version must be an Aurora PostgreSQL version such as 16.6 (major 13 or later: Serverless v2)."
  }
}

variable "postgres_min_acu" {
  description = "Minimum Aurora Serverless v2 capacity in ACUs (0, or 0.5 and up in steps of 0.5). 0 pauses the cluster when it has had no connection for postgres_seconds_until_auto_pause; the gateways' and workers' connection pools keep it awake while they run."
  type        = number
  default     = 0.5

  validation {
    condition     = var.postgres_min_acu >= 0 && var.postgres_min_acu <= 256 && floor(var.postgres_min_acu * 2) == var.postgres_min_acu * 2
    error_message = "postgres_min_acu must be between 0 and 256 in steps of 0.5."
  }
}

variable "postgres_max_acu" {
  description = "Maximum Aurora Serverless v2 capacity in ACUs (1-256, at least postgres_min_acu)."
  type        = number
  default     = 16

  validation {
    condition     = var.postgres_max_acu >= 1 && var.postgres_max_acu <= 256 && floor(var.postgres_max_acu * 2) == var.postgres_max_acu * 2 && var.postgres_max_acu >= var.postgres_min_acu
    error_message = "postgres_max_acu must be between 1 and 256 in steps of 0.5, and at least postgres_min_acu."
  }
}

variable "postgres_seconds_until_auto_pause" {
  description = "With postgres_min_acu = 0: idle seconds (300-86400) before the cluster pauses."
  type        = number
  default     = 3600

  validation {
    condition     = var.postgres_seconds_until_auto_pause >= 300 && var.postgres_seconds_until_auto_pause <= 86400
    error_message = "postgres_seconds_until_auto_pause must be between 300 and 86400."
  }
}

variable "postgres_instance_count" {
  description = "Aurora instances: 1 writer plus failover readers in other AZs. 2 or more for production (a failover takes about 30 s instead of a rebuild)."
  type        = number
  default     = 2

  validation {
    condition     = var.postgres_instance_count >= 1 && var.postgres_instance_count <= 15
    error_message = "postgres_instance_count must be between 1 and 15."
  }
}

variable "postgres_backup_retention_days" {
  description = "Days of continuous backups (point-in-time restore window), 1-35."
  type        = number
  default     = 14

  validation {
    condition     = var.postgres_backup_retention_days >= 1 && var.postgres_backup_retention_days <= 35
    error_message = "postgres_backup_retention_days must be between 1 and 35."
  }
}

variable "postgres_force_tls" {
  description = "Set rds.force_ssl = 1 so PostgreSQL refuses clients without TLS (the store URL asks for TLS with sslmode=require either way)."
  type        = bool
  default     = true
}

# ----------------------------------------------------------------- Redis

variable "redis_node_type" {
  description = "ElastiCache node type. The queue keeps at most jobs.max_len JPEG frames per shard (4 x 10000 x ~100 KB by default): size memory for that."
  type        = string
  default     = "cache.m7g.large"

  validation {
    condition     = can(regex("^cache\\.[a-z0-9]+\\.[a-z0-9]+$", var.redis_node_type))
    error_message = "redis_node_type must be an ElastiCache node type such as cache.m7g.large."
  }
}

variable "redis_engine_version" {
  description = "Redis OSS engine version on ElastiCache (7.x: streams consumer groups, ACL-free AUTH token)."
  type        = string
  default     = "7.1"

  validation {
    condition     = can(regex("^7\\.[0-9]+$", var.redis_engine_version))
    error_message = "redis_engine_version must be a Redis OSS 7.x version such as 7.1."
  }
}

variable "redis_node_count" {
  description = "Redis nodes: a primary plus replicas spread over AZs (Multi-AZ automatic failover needs at least 2)."
  type        = number
  default     = 2

  validation {
    condition     = var.redis_node_count >= 2 && var.redis_node_count <= 6
    error_message = "redis_node_count must be between 2 (primary and a failover replica) and 6."
  }
}

variable "redis_snapshot_retention_days" {
  description = "Days of daily Redis snapshots kept (0 disables them)."
  type        = number
  default     = 3

  validation {
    condition     = var.redis_snapshot_retention_days >= 0 && var.redis_snapshot_retention_days <= 35
    error_message = "redis_snapshot_retention_days must be between 0 and 35."
  }
}

# -------------------------------------------------------------------- S3

variable "snapshot_bucket_name" {
  description = "Name of the snapshot bucket; empty: <name>-snapshots-<account id>."
  type        = string
  default     = ""

  validation {
    condition     = var.snapshot_bucket_name == "" || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.snapshot_bucket_name))
    error_message = "snapshot_bucket_name must be a valid S3 bucket name (3-63 lowercase letters, digits, dots, dashes)."
  }
}

variable "snapshot_expiry_days" {
  description = "Days after which snapshot JPEGs are deleted. Match analytics.retention_days (30) so links in stored results outlive neither."
  type        = number
  default     = 30

  validation {
    condition     = var.snapshot_expiry_days >= 1 && var.snapshot_expiry_days <= 3650
    error_message = "snapshot_expiry_days must be between 1 and 3650."
  }
}

variable "snapshot_noncurrent_expiry_days" {
  description = "Days an overwritten or deleted snapshot version is kept (recovery window of versioning)."
  type        = number
  default     = 7

  validation {
    condition     = var.snapshot_noncurrent_expiry_days >= 1 && var.snapshot_noncurrent_expiry_days <= 365
    error_message = "snapshot_noncurrent_expiry_days must be between 1 and 365."
  }
}

variable "access_logs_bucket" {
  description = "Bucket receiving the snapshot bucket's server access logs (under s3/<bucket>/)."
  type        = string
}

variable "force_destroy_buckets" {
  description = "Let terraform destroy delete the snapshot bucket with its objects. Keep false outside throwaway environments."
  type        = bool
  default     = false
}

# --------------------------------------------------------------- Secrets

variable "secret_recovery_window_days" {
  description = "Days a deleted secret can still be restored (0 deletes at once; else 7-30)."
  type        = number
  default     = 30

  validation {
    condition     = var.secret_recovery_window_days == 0 || (var.secret_recovery_window_days >= 7 && var.secret_recovery_window_days <= 30)
    error_message = "secret_recovery_window_days must be 0 or between 7 and 30."
  }
}
