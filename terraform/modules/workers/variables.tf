variable "name" {
  description = "Name of the environment (e.g. panoptes-prod), used in resource names."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name))
    error_message = "name must be 3-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "vpc_id" {
  description = "VPC of the worker tasks."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets of the worker tasks."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 1
    error_message = "private_subnet_ids must not be empty."
  }
}

variable "data_client_security_group_id" {
  description = "Security group that may reach PostgreSQL and Redis (from the data module)."
  type        = string
}

variable "cluster_arn" {
  description = "ECS cluster ARN."
  type        = string
}

variable "cluster_name" {
  description = "ECS cluster name (autoscaling resource ids)."
  type        = string
}

variable "image" {
  description = "Worker image (panoptes-worker, CPU build), by digest or immutable tag. Run as `panoptes worker --role <role>`."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})$", var.image))
    error_message = "image must be a registry/repository reference with a tag or digest."
  }
}

variable "cpu_architecture" {
  description = "CPU architecture of the image: X86_64 or ARM64."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "roles" {
  description = <<-EOT
    Size and task counts of each Fargate worker role. cpu in CPU units (1024 = 1 vCPU), memory in MiB
    (a Fargate-valid pairing). Roles whose max_count exceeds min_count scale on CPU (target
    cpu_target_percent). ingest decodes H.264 (about 0.1 vCPU per camera at 2 sampled fps, 64 cameras
    per task at most: ingest.max_streams); schedule also publishes the queue lag the GPU detectors
    scale on and must keep at least one task.
  EOT
  type = object({
    ingest = optional(object({
      cpu                = optional(number, 2048)
      memory             = optional(number, 4096)
      min_count          = optional(number, 2)
      max_count          = optional(number, 20)
      cpu_target_percent = optional(number, 60)
    }), {})
    analytics = optional(object({
      cpu                = optional(number, 1024)
      memory             = optional(number, 2048)
      min_count          = optional(number, 2)
      max_count          = optional(number, 10)
      cpu_target_percent = optional(number, 60)
    }), {})
    notify = optional(object({
      cpu                = optional(number, 512)
      memory             = optional(number, 1024)
      min_count          = optional(number, 2)
      max_count          = optional(number, 6)
      cpu_target_percent = optional(number, 60)
    }), {})
    schedule = optional(object({
      cpu                = optional(number, 512)
      memory             = optional(number, 1024)
      min_count          = optional(number, 2)
      max_count          = optional(number, 2)
      cpu_target_percent = optional(number, 60)
    }), {})
  })
  default = {}

  validation {
    condition     = alltrue([for r in values(var.roles) : contains([256, 512, 1024, 2048, 4096, 8192, 16384], r.cpu)])
    error_message = "Each role's cpu must be 256, 512, 1024, 2048, 4096, 8192 or 16384."
  }

  validation {
    condition     = alltrue([for r in values(var.roles) : r.memory >= 512 && r.memory <= 122880])
    error_message = "Each role's memory must be between 512 and 122880 MiB."
  }

  validation {
    condition     = alltrue([for r in values(var.roles) : r.min_count >= 0 && r.max_count >= r.min_count && r.max_count <= 1000])
    error_message = "Each role needs 0 <= min_count <= max_count <= 1000."
  }

  validation {
    condition     = alltrue([for r in values(var.roles) : r.cpu_target_percent >= 10 && r.cpu_target_percent <= 90])
    error_message = "Each role's cpu_target_percent must be between 10 and 90."
  }

  validation {
    condition     = var.roles.schedule.min_count >= 1
    error_message = "roles.schedule.min_count must be at least 1: the schedule tasks publish panoptes_jobs_lag, without which the GPU detectors can neither wake from zero nor scale."
  }
}

variable "camera_egress_ports" {
  description = "TCP ports the ingest role may open to cameras on the internet besides 443 (RTSP 554 and 8554, RTSPS 322). Add the ports of your cameras."
  type        = list(number)
  default     = [554, 322, 8554]

  validation {
    condition     = alltrue([for p in var.camera_egress_ports : p >= 1 && p <= 65535 && floor(p) == p])
    error_message = "camera_egress_ports must be TCP port numbers."
  }
}

variable "webhook_egress_ports" {
  description = "TCP ports the notify role may deliver customer webhooks to besides 443 (https:// URLs with an explicit port)."
  type        = list(number)
  default     = []

  validation {
    condition     = alltrue([for p in var.webhook_egress_ports : p >= 1 && p <= 65535 && floor(p) == p])
    error_message = "webhook_egress_ports must be TCP port numbers."
  }
}

variable "extra_environment" {
  description = "Further PANOPTES__* (or RUST_LOG / OTEL_*) settings for every worker role. Never secrets."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.extra_environment) : can(regex("^(PANOPTES__[A-Z0-9_]+|RUST_LOG|OTEL_[A-Z0-9_]+)$", k))])
    error_message = "extra_environment keys must be PANOPTES__SECTION__KEY, RUST_LOG or OTEL_* names."
  }
}

variable "secret_arns" {
  description = "Secrets Manager ARNs of the values every process reads."
  type = object({
    store_url       = string
    redis_url       = string
    jwt_secret      = string
    credentials_key = string
  })
}

variable "kms_key_arn" {
  description = "Environment key: secrets, SSM parameters and snapshots are encrypted with it."
  type        = string
}

variable "ecr_repository_arns" {
  description = "ECR repositories the tasks may pull from (empty for a public registry)."
  type        = list(string)
  default     = []
}

variable "snapshot_bucket_name" {
  description = "Snapshot bucket (PANOPTES__BLOBS__S3_BUCKET)."
  type        = string
}

variable "snapshot_bucket_arn" {
  description = "ARN of the snapshot bucket (analytics presigns reads from it)."
  type        = string
}

variable "log_group_names" {
  description = "Log group names by process kind (observability module)."
  type        = map(string)
}

variable "log_group_arns" {
  description = "Log group ARNs by process kind (observability module)."
  type        = map(string)
}

variable "prometheus_log_group_arn" {
  description = "ARN of the EMF log group the schedule tasks' metrics sidecar writes to."
  type        = string
}

variable "metrics_agent_image" {
  description = "CloudWatch agent image of the schedule tasks' metrics sidecar."
  type        = string
  default     = "public.ecr.aws/cloudwatch-agent/cloudwatch-agent:1.300062.0b1304"
}

variable "metrics_agent_parameter_arns" {
  description = "SSM parameters holding the schedule sidecar's agent and Prometheus configuration."
  type = object({
    agent      = string
    prometheus = string
  })
}
