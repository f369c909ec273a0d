variable "name" {
  description = "Name of the environment (e.g. panoptes-prod), used in resource names."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,24}$", var.name))
    error_message = "name must be 3-25 lowercase letters, digits or dashes, starting with a letter (ALB and target group names are limited to 32 characters)."
  }
}

# ---------------------------------------------------------------- network

variable "vpc_id" {
  description = "VPC of the ALB and the tasks."
  type        = string
}

variable "vpc_cidr_block" {
  description = "CIDR of the VPC: PANOPTES__SERVER__TRUSTED_PROXIES, so the gateways believe the ALB's X-Forwarded-For (and nothing outside the VPC can spoof it)."
  type        = string

  validation {
    condition     = can(cidrhost(var.vpc_cidr_block, 0))
    error_message = "vpc_cidr_block must be a CIDR block."
  }
}

variable "public_subnet_ids" {
  description = "Public subnets of the ALB (two AZs or more)."
  type        = list(string)

  validation {
    condition     = length(var.public_subnet_ids) >= 2
    error_message = "The ALB needs public subnets in at least two availability zones."
  }
}

variable "private_subnet_ids" {
  description = "Private subnets of the gateway tasks."
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

variable "ingress_cidr_blocks" {
  description = "Client networks allowed to reach the ALB on 80 (redirect only) and 443."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = length(var.ingress_cidr_blocks) > 0 && alltrue([for c in var.ingress_cidr_blocks : can(cidrhost(c, 0))])
    error_message = "ingress_cidr_blocks must be one or more IPv4 CIDR blocks."
  }
}

variable "camera_egress_ports" {
  description = "TCP ports the gateways may open to the internet besides 443: the camera probe run when a device is registered (RTSP 554 and 8554, RTSPS 322). Add the ports of your cameras."
  type        = list(number)
  default     = [554, 322, 8554]

  validation {
    condition     = alltrue([for p in var.camera_egress_ports : p >= 1 && p <= 65535 && floor(p) == p])
    error_message = "camera_egress_ports must be TCP port numbers."
  }
}

# -------------------------------------------------------------------- ALB

variable "certificate_arn" {
  description = "ACM certificate of the HTTPS listener (in the ALB's region), covering the API host name."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[0-9a-f-]+$", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN."
  }
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listener (TLS 1.3 with 1.2 fallback by default)."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"

  validation {
    condition     = can(regex("^ELBSecurityPolicy-(TLS13|FS-1-2|TLS-1-2)", var.ssl_policy))
    error_message = "ssl_policy must be an ELB security policy that requires TLS 1.2 or later."
  }
}

variable "idle_timeout_seconds" {
  description = "ALB idle timeout. An SSE stream is idle between keep-alive comments (every 15 s, sse.keep_alive_ms) and a proxy in front of the client may delay them: keep it well above 15 s. 120 s tolerates several lost keep-alives."
  type        = number
  default     = 120

  validation {
    condition     = var.idle_timeout_seconds >= 60 && var.idle_timeout_seconds <= 4000
    error_message = "idle_timeout_seconds must be between 60 (4 keep-alive intervals) and 4000."
  }
}

variable "deregistration_delay_seconds" {
  description = "Draining time of a gateway leaving the target group before ECS stops it. Requests finish in seconds; SSE streams never finish, are ended by the gateway on SIGTERM and resume on another replica with Last-Event-ID, so waiting longer only slows deployments."
  type        = number
  default     = 30

  validation {
    condition     = var.deregistration_delay_seconds >= 0 && var.deregistration_delay_seconds <= 3600
    error_message = "deregistration_delay_seconds must be between 0 and 3600."
  }
}

variable "deletion_protection" {
  description = "Protect the ALB from deletion (turn off only for throwaway environments)."
  type        = bool
  default     = true
}

variable "access_logs_bucket" {
  description = "Bucket receiving the ALB access logs under alb/."
  type        = string
}

variable "enable_waf" {
  description = "Attach an AWS WAF web ACL (managed common, known-bad-inputs and IP reputation rules plus a per-IP rate limit) to the ALB. About 10 USD/month plus 0.60 USD per million requests."
  type        = bool
  default     = true
}

variable "waf_rate_limit_per_5min" {
  description = "Requests one client IP may send in 5 minutes before WAF blocks it (100-2000000000). SSE streams are one request each, but every frame an edge device pushes is one (up to edge.max_fps = 10 a second per device), and a site's devices often share one address: 20000 is about 66 requests a second."
  type        = number
  default     = 20000

  validation {
    condition     = var.waf_rate_limit_per_5min >= 100 && var.waf_rate_limit_per_5min <= 2000000000
    error_message = "waf_rate_limit_per_5min must be between 100 and 2000000000."
  }
}

variable "waf_log_retention_days" {
  description = "Days WAF logs are kept."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.waf_log_retention_days)
    error_message = "waf_log_retention_days must be a retention period CloudWatch Logs accepts."
  }
}

# ----------------------------------------------------------- the service

variable "cluster_arn" {
  description = "ECS cluster ARN."
  type        = string
}

variable "cluster_name" {
  description = "ECS cluster name (autoscaling resource id)."
  type        = string
}

variable "image" {
  description = "Image of the gateway (panoptes-gateway), by digest or immutable tag, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/panoptes-gateway:1.4.2."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})$", var.image))
    error_message = "image must be a registry/repository reference with a tag or digest."
  }
}

variable "cpu_architecture" {
  description = "CPU architecture of the image: X86_64 or ARM64 (Graviton, about 20% cheaper on Fargate)."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "task_cpu" {
  description = "Fargate CPU units of a gateway task (1024 = 1 vCPU)."
  type        = number
  default     = 1024

  validation {
    condition     = contains([512, 1024, 2048, 4096, 8192, 16384], var.task_cpu)
    error_message = "task_cpu must be 512, 1024, 2048, 4096, 8192 or 16384."
  }
}

variable "task_memory" {
  description = "Memory of a gateway task in MiB (must be a Fargate-valid pairing with task_cpu)."
  type        = number
  default     = 2048

  validation {
    condition     = var.task_memory >= 1024 && var.task_memory <= 122880 && var.task_memory % 1024 == 0
    error_message = "task_memory must be a multiple of 1024 MiB between 1024 and 122880."
  }
}

variable "min_count" {
  description = "Fewest gateway tasks (2 or more keeps the API up through a task or AZ loss)."
  type        = number
  default     = 2

  validation {
    condition     = var.min_count >= 1
    error_message = "min_count must be at least 1."
  }
}

variable "max_count" {
  description = "Most gateway tasks autoscaling may run."
  type        = number
  default     = 20

  validation {
    condition     = var.max_count >= var.min_count && var.max_count <= 1000
    error_message = "max_count must be at least min_count and at most 1000."
  }
}

variable "cpu_target_percent" {
  description = "Average CPU utilization the gateway service is kept at by target tracking."
  type        = number
  default     = 60

  validation {
    condition     = var.cpu_target_percent >= 10 && var.cpu_target_percent <= 90
    error_message = "cpu_target_percent must be between 10 and 90."
  }
}

variable "sse_streams_per_task" {
  description = "Open SSE streams per gateway task (panoptes_sse_streams, averaged over tasks) that target tracking keeps the service at. Streams are cheap but each holds a socket, a slot lease renewal every 15 s and a 256-event queue."
  type        = number
  default     = 2000

  validation {
    condition     = var.sse_streams_per_task >= 10 && var.sse_streams_per_task <= 50000
    error_message = "sse_streams_per_task must be between 10 and 50000 (server.max_connections)."
  }
}

variable "extra_environment" {
  description = "Further PANOPTES__* (or RUST_LOG / OTEL_*) settings of the gateways, e.g. { PANOPTES__SERVER__CORS_ALLOWED_ORIGINS = \"https://app.example.com\" }. Never secrets: those belong in Secrets Manager."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.extra_environment) : can(regex("^(PANOPTES__[A-Z0-9_]+|RUST_LOG|OTEL_[A-Z0-9_]+)$", k))])
    error_message = "extra_environment keys must be PANOPTES__SECTION__KEY, RUST_LOG or OTEL_* names."
  }
}

# ------------------------------------------------ data, secrets, logging

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
  description = "ECR repositories the task may pull from (empty for a public registry)."
  type        = list(string)
  default     = []
}

variable "snapshot_bucket_name" {
  description = "Snapshot bucket (PANOPTES__BLOBS__S3_BUCKET)."
  type        = string
}

variable "snapshot_bucket_arn" {
  description = "ARN of the snapshot bucket: the gateways may only read objects from it (presigned GET links are signed with their role)."
  type        = string
}

variable "log_group_name" {
  description = "Log group of the gateway containers."
  type        = string
}

variable "log_group_arn" {
  description = "ARN of the gateway log group."
  type        = string
}

variable "metrics_agent_log_group_name" {
  description = "Log group of the metrics agent sidecars' own output."
  type        = string
}

variable "metrics_agent_log_group_arn" {
  description = "ARN of the metrics agent log group."
  type        = string
}

variable "prometheus_log_group_arn" {
  description = "ARN of the EMF log group the metrics sidecar writes scraped metrics to."
  type        = string
}

variable "metrics_agent_image" {
  description = "CloudWatch agent image of the metrics sidecar."
  type        = string
  default     = "public.ecr.aws/cloudwatch-agent/cloudwatch-agent:1.300062.0b1304"
}

variable "metrics_agent_parameter_arns" {
  description = "SSM parameters holding the sidecar's agent and Prometheus configuration (observability module, gateway entry)."
  type = object({
    agent      = string
    prometheus = string
  })
}

variable "metric_namespace" {
  description = "CloudWatch namespace of panoptes_sse_streams."
  type        = string
}

variable "environment" {
  description = "Value of the Environment dimension of the scraped metrics."
  type        = string
}
