variable "name" {
  description = "Name of the environment (e.g. panoptes-prod), used in resource names."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name))
    error_message = "name must be 3-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "environment" {
  description = "Short environment name (e.g. prod): the Environment dimension of the Panoptes metrics."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,15}$", var.environment))
    error_message = "environment must be 1-16 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "log_group_prefix" {
  description = "Prefix of every log group created here (e.g. /panoptes/prod)."
  type        = string

  validation {
    condition     = can(regex("^/[A-Za-z0-9_./-]+[^/]$", var.log_group_prefix))
    error_message = "log_group_prefix must start with /, hold only letters, digits, _ . / - and not end with /."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the log groups and the agent configuration parameters."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "log_retention_days" {
  description = "Days application logs are kept (the raw EMF events of scraped metrics are kept 7 days: the metrics themselves live 15 months in CloudWatch)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention period CloudWatch Logs accepts."
  }
}

variable "metric_namespace" {
  description = "CloudWatch namespace of the metrics scraped from the Panoptes /metrics endpoints."
  type        = string
  default     = "Panoptes"

  validation {
    condition     = can(regex("^[A-Za-z0-9_./#:-]{1,255}$", var.metric_namespace)) && !startswith(var.metric_namespace, "AWS/")
    error_message = "metric_namespace must be a valid custom CloudWatch namespace (not starting with AWS/)."
  }
}

variable "scrape_interval_seconds" {
  description = "How often the metrics agent sidecars scrape /metrics (10-60 s). Alarms evaluate 1-minute periods, so 15 s gives four samples a period."
  type        = number
  default     = 15

  validation {
    condition     = var.scrape_interval_seconds >= 10 && var.scrape_interval_seconds <= 60
    error_message = "scrape_interval_seconds must be between 10 and 60."
  }
}

variable "access_log_expiry_days" {
  description = "Days ALB and S3 access logs are kept in the access log bucket."
  type        = number
  default     = 90

  validation {
    condition     = var.access_log_expiry_days >= 1 && var.access_log_expiry_days <= 3650
    error_message = "access_log_expiry_days must be between 1 and 3650."
  }
}

variable "force_destroy_buckets" {
  description = "Let terraform destroy delete the access log bucket with its objects."
  type        = bool
  default     = false
}

variable "alarm_actions" {
  description = "SNS topic ARNs notified when an operational alarm fires or recovers (empty: alarms only show in the console)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.alarm_actions : can(regex("^arn:aws[a-z-]*:sns:", a))])
    error_message = "alarm_actions must be SNS topic ARNs."
  }
}

# ------------------------------------ names of what the dashboard shows

variable "ecs_cluster_name" {
  description = "ECS cluster of the services (dashboard)."
  type        = string
}

variable "ecs_service_names" {
  description = "ECS service names by role: gateway, ingest, analytics, notify, schedule, detect (dashboard)."
  type        = map(string)
}

variable "alb_arn_suffix" {
  description = "ARN suffix of the gateway ALB (dashboard, alarms)."
  type        = string
}

variable "target_group_arn_suffix" {
  description = "ARN suffix of the gateway target group (dashboard, alarms)."
  type        = string
}

variable "gpu_autoscaling_group_name" {
  description = "Auto Scaling group of the GPU detector instances (dashboard)."
  type        = string
}

variable "postgres_cluster_identifier" {
  description = "Aurora cluster identifier (dashboard)."
  type        = string
}

variable "redis_replication_group_id" {
  description = "ElastiCache replication group id (dashboard)."
  type        = string
}
