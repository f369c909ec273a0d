variable "name" {
  description = "Name of the environment (e.g. panoptes-prod); the key alias is alias/<name>."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name))
    error_message = "name must be 3-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "log_group_prefix" {
  description = "Prefix of every CloudWatch log group this environment encrypts with the key (e.g. /panoptes/prod). CloudWatch Logs may use the key only for groups under it."
  type        = string

  validation {
    condition     = can(regex("^/[A-Za-z0-9_./-]+$", var.log_group_prefix))
    error_message = "log_group_prefix must start with / and hold only letters, digits, _ . / -."
  }
}

variable "extra_log_group_arn_patterns" {
  description = "More log group ARN patterns the key may encrypt (e.g. the RDS and ElastiCache log groups, whose names AWS dictates)."
  type        = list(string)
  default     = []
}

variable "deletion_window_in_days" {
  description = "Days a scheduled key deletion waits (7-30); everything encrypted with the key is lost once it is deleted."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30
    error_message = "deletion_window_in_days must be between 7 and 30."
  }
}
