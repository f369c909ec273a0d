# ------------------------------------------------------------ environment

variable "region" {
  description = "AWS region of the environment."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name; the environment name is appended (panoptes-prod)."
  type        = string
  default     = "panoptes"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,11}$", var.name_prefix))
    error_message = "name_prefix must be 2-12 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "environment" {
  description = "Environment name (prod, staging, ...): part of names, the Environment tag and the metrics' Environment dimension."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,11}$", var.environment))
    error_message = "environment must be 2-12 lowercase letters or digits, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags on every resource (e.g. CostCenter, Owner)."
  type        = map(string)
  default     = {}
}

variable "deletion_protection" {
  description = "Protect the ALB and Aurora from deletion and keep a final database snapshot. Set false only to tear down a throwaway environment."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------- network

variable "vpc_cidr" {
  description = "IPv4 CIDR of the VPC (/16 to /19)."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "vpc_cidr must be an IPv4 CIDR block."
  }
}

variable "az_count" {
  description = "Availability zones used (2 or 3)."
  type        = number
  default     = 3

  validation {
    condition     = contains([2, 3], var.az_count)
    error_message = "az_count must be 2 or 3."
  }
}

variable "availability_zones" {
  description = "Availability zone names to use (empty: <region>a, b, c). Choose zones offering the GPU instance types."
  type        = list(string)
  default     = []
}

variable "nat_gateway_per_az" {
  description = "A NAT gateway in every AZ (resilient) or one shared (cheaper)."
  type        = bool
  default     = true
}

variable "camera_egress_ports" {
  description = "TCP ports besides 443 that ingest and the gateways' camera probe may open to cameras (RTSP 554, 8554; RTSPS 322)."
  type        = list(number)
  default     = [554, 322, 8554]

  validation {
    condition     = alltrue([for p in var.camera_egress_ports : p >= 1 && p <= 65535])
    error_message = "camera_egress_ports must be TCP port numbers."
  }
}

variable "webhook_egress_ports" {
  description = "TCP ports besides 443 that notify may deliver customer webhooks to."
  type        = list(number)
  default     = []

  validation {
    condition     = alltrue([for p in var.webhook_egress_ports : p >= 1 && p <= 65535])
    error_message = "webhook_egress_ports must be TCP port numbers."
  }
}

# -------------------------------------------------------------------- API

variable "certificate_arn" {
  description = "ACM certificate (same region) for the API host name."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN."
  }
}

variable "api_domain_name" {
  description = "Host name of the API (covered by the certificate). Empty: the API URL is the ALB's DNS name (and TLS will not match it)."
  type        = string
  default     = ""

  validation {
    condition     = var.api_domain_name == "" || can(regex("^([a-z0-9]([a-z0-9-]*[a-z0-9])?\\.)+[a-z]{2,}$", var.api_domain_name))
    error_message = "api_domain_name must be a lowercase DNS name such as api.example.com, or empty."
  }
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone in which to create the api_domain_name alias record (empty: manage DNS yourself)."
  type        = string
  default     = ""

  validation {
    condition     = var.route53_zone_id == "" || can(regex("^Z[A-Z0-9]+$", var.route53_zone_id))
    error_message = "route53_zone_id must be a hosted zone id (Z...) or empty."
  }
}

variable "alb_ingress_cidr_blocks" {
  description = "Client networks allowed to reach the API."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "alb_idle_timeout_seconds" {
  description = "ALB idle timeout; must stay well above the 15 s SSE keep-alive."
  type        = number
  default     = 120

  validation {
    condition     = var.alb_idle_timeout_seconds >= 60 && var.alb_idle_timeout_seconds <= 4000
    error_message = "alb_idle_timeout_seconds must be between 60 and 4000."
  }
}

variable "enable_waf" {
  description = "Put AWS WAF (managed rules and a per-IP rate limit) in front of the API."
  type        = bool
  default     = true
}

# ----------------------------------------------------------------- images

variable "gateway_image" {
  description = "panoptes-gateway image, by immutable tag or digest."
  type        = string
}

variable "worker_image" {
  description = "panoptes-worker image (CPU build) for ingest, analytics, notify and schedule."
  type        = string
}

variable "worker_gpu_image" {
  description = "panoptes-worker-gpu image (CUDA build) for the detectors."
  type        = string
}

variable "ecr_repository_arns" {
  description = "ECR repositories of the three images (the execution roles may pull only from these). Empty for images in a public registry."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.ecr_repository_arns : can(regex("^arn:aws[a-z-]*:ecr:[a-z0-9-]+:[0-9]{12}:repository/.+$", a))])
    error_message = "ecr_repository_arns must be ECR repository ARNs."
  }
}

variable "cpu_architecture" {
  description = "Architecture of the gateway and CPU worker images (X86_64 or ARM64); the GPU image is x86_64."
  type        = string
  default     = "X86_64"
}

variable "extra_environment" {
  description = "Further non-secret PANOPTES__* settings for every process (e.g. PANOPTES__SERVER__CORS_ALLOWED_ORIGINS)."
  type        = map(string)
  default     = {}
}

# --------------------------------------------------------------- scaling

variable "gateway_min_count" {
  description = "Fewest gateway tasks."
  type        = number
  default     = 2
}

variable "gateway_max_count" {
  description = "Most gateway tasks."
  type        = number
  default     = 20
}

variable "sse_streams_per_task" {
  description = "Open SSE streams per gateway task that autoscaling aims for."
  type        = number
  default     = 2000
}

variable "worker_roles" {
  description = "Per-role size and counts of the Fargate workers: { ingest = { cpu, memory, min_count, max_count, cpu_target_percent }, analytics = ..., notify = ..., schedule = ... }; omitted fields keep the workers module's defaults (validated there)."
  type        = any
  default     = {}
}

variable "gpu_instance_types" {
  description = "GPU instance types for the detectors, one NVIDIA GPU each."
  type        = list(string)
  default     = ["g4dn.xlarge", "g5.xlarge", "g6.xlarge"]
}

variable "gpu_min_tasks" {
  description = "Fewest GPU detectors (0: scale to zero when no frames arrive)."
  type        = number
  default     = 0
}

variable "gpu_max_tasks" {
  description = "Most GPU detectors (= GPU instances)."
  type        = number
  default     = 8
}

variable "gpu_lag_scale_out_threshold" {
  description = "Frame queue lag (jobs) that adds detectors; see the gpu_detectors module."
  type        = number
  default     = 100
}

variable "gpu_spot_percentage" {
  description = "Share of GPU instances above the first bought as Spot (0-100)."
  type        = number
  default     = 0
}

variable "gpu_warm_pool_size" {
  description = "Stopped GPU instances kept ready for a fast wake-up (0: none)."
  type        = number
  default     = 0
}

# ------------------------------------------------------------------ data

variable "postgres_min_acu" {
  description = "Aurora Serverless v2 minimum ACUs (0 allows auto-pause)."
  type        = number
  default     = 0.5
}

variable "postgres_max_acu" {
  description = "Aurora Serverless v2 maximum ACUs."
  type        = number
  default     = 16
}

variable "postgres_instance_count" {
  description = "Aurora instances (writer + failover readers)."
  type        = number
  default     = 2
}

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.m7g.large"
}

variable "redis_node_count" {
  description = "Redis nodes (2+: Multi-AZ failover)."
  type        = number
  default     = 2
}

variable "snapshot_expiry_days" {
  description = "Days snapshot JPEGs are kept."
  type        = number
  default     = 30
}

# --------------------------------------------------------- observability

variable "log_retention_days" {
  description = "Days application, database and network logs are kept."
  type        = number
  default     = 365
}

variable "alarm_sns_topic_arns" {
  description = "SNS topics notified by the operational alarms (empty: console only)."
  type        = list(string)
  default     = []
}
