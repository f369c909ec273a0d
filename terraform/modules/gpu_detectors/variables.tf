variable "name" {
  description = "Name of the environment (e.g. panoptes-prod), used in resource names."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name))
    error_message = "name must be 3-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "environment" {
  description = "Value of the Environment dimension of the queue metrics (published by the schedule tasks)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the GPU instances and detector tasks."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets of the GPU instances (spread over AZs: GPU capacity is often short in one AZ)."
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

variable "cluster_name" {
  description = "ECS cluster the instances join."
  type        = string
}

variable "cluster_arn" {
  description = "ARN of that cluster."
  type        = string
}

# ------------------------------------------------------------- instances

variable "instance_types" {
  description = "GPU instance types, in order of preference, each with one NVIDIA GPU (g4dn.xlarge: T4, g5.xlarge: A10G, g6.xlarge: L4). More types mean fewer InsufficientInstanceCapacity failures."
  type        = list(string)
  default     = ["g4dn.xlarge", "g5.xlarge", "g6.xlarge"]

  validation {
    condition     = length(var.instance_types) > 0 && alltrue([for t in var.instance_types : can(regex("^(g4dn|g5|g6|g6e|p3|p4d|p5)\\.[a-z0-9]+$", t))])
    error_message = "instance_types must be NVIDIA GPU instance types (g4dn, g5, g6, g6e, p3, p4d, p5 families)."
  }
}

variable "ami_ssm_parameter" {
  description = "Public SSM parameter of the ECS GPU-optimized AMI (NVIDIA driver, container toolkit, ECS agent). The value is read at plan time, so a new AMI shows up as a launch template change."
  type        = string
  default     = "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id"

  validation {
    condition     = startswith(var.ami_ssm_parameter, "/aws/service/ecs/optimized-ami/")
    error_message = "ami_ssm_parameter must be one of the public /aws/service/ecs/optimized-ami/ parameters."
  }
}

variable "root_volume_size_gb" {
  description = "Root EBS volume (gp3) per instance: the AMI plus the CUDA worker image (several GB) and its layers during an update."
  type        = number
  default     = 80

  validation {
    condition     = var.root_volume_size_gb >= 40 && var.root_volume_size_gb <= 1000
    error_message = "root_volume_size_gb must be between 40 and 1000."
  }
}

variable "spot_percentage" {
  description = "Share (0-100) of GPU instances above the first bought as Spot. Detection tolerates losing a node (unacknowledged jobs are re-delivered after jobs.visibility_seconds), so Spot cuts the bill by about 60-70%."
  type        = number
  default     = 0

  validation {
    condition     = var.spot_percentage >= 0 && var.spot_percentage <= 100
    error_message = "spot_percentage must be between 0 and 100."
  }
}

variable "warm_pool_size" {
  description = "Stopped, pre-initialised GPU instances kept in an Auto Scaling warm pool (0: none). A stopped instance costs only its EBS volume and starts in about a minute instead of a cold boot plus image pull of several minutes."
  type        = number
  default     = 0

  validation {
    condition     = var.warm_pool_size >= 0 && var.warm_pool_size <= 20
    error_message = "warm_pool_size must be between 0 and 20."
  }
}

# ---------------------------------------------------------------- tasks

variable "image" {
  description = "GPU worker image (panoptes-worker-gpu: CUDA build of ONNX Runtime and the model), by digest or immutable tag."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})$", var.image))
    error_message = "image must be a registry/repository reference with a tag or digest."
  }
}

variable "task_cpu" {
  description = "CPU units reserved per detector task (one task per GPU). JPEG decoding runs on the CPU: leave 512 units of an xlarge instance to the ECS agent and the OS."
  type        = number
  default     = 3584

  validation {
    condition     = var.task_cpu >= 1024 && var.task_cpu <= 192000
    error_message = "task_cpu must be between 1024 and 192000 CPU units."
  }
}

variable "task_memory" {
  description = "Memory (MiB) reserved per detector task; must fit the smallest instance type after the agent's share (about 14 GiB usable on a 16 GiB xlarge)."
  type        = number
  default     = 12288

  validation {
    condition     = var.task_memory >= 2048 && var.task_memory <= 786432
    error_message = "task_memory must be between 2048 and 786432 MiB."
  }
}

variable "detector_concurrency" {
  description = "Batches in flight per detector (detector.concurrency): 2 on a GPU lets one batch decode while another infers."
  type        = number
  default     = 2

  validation {
    condition     = var.detector_concurrency >= 1 && var.detector_concurrency <= 8
    error_message = "detector_concurrency must be between 1 and 8."
  }
}

variable "detector_batch_size" {
  description = "Frames per inference batch (detector.batch_size)."
  type        = number
  default     = 4

  validation {
    condition     = var.detector_batch_size >= 1 && var.detector_batch_size <= 64
    error_message = "detector_batch_size must be between 1 and 64."
  }
}

variable "min_tasks" {
  description = "Fewest detector tasks (= GPU instances). 0 lets the pool scale to zero when no frames arrive; the first frames after idle then wait for an instance to boot (minutes) and older than jobs.max_age_ms (10 s) are dropped as stale."
  type        = number
  default     = 0

  validation {
    condition     = var.min_tasks >= 0 && var.min_tasks <= 100
    error_message = "min_tasks must be between 0 and 100."
  }
}

variable "max_tasks" {
  description = "Most detector tasks (= GPU instances) autoscaling may run."
  type        = number
  default     = 8

  validation {
    condition     = var.max_tasks >= 1 && var.max_tasks >= var.min_tasks && var.max_tasks <= 100
    error_message = "max_tasks must be between 1 and 100 and at least min_tasks."
  }
}

# -------------------------------------------------------------- scaling

variable "lag_scale_out_threshold" {
  description = "panoptes_jobs_lag (waiting + in-flight frame jobs) at or above which detectors are added: +1 from 1x, +2 from 2x, +4 from 5x this value. It must exceed what a full pool holds in flight (max_tasks x batch_size x concurrency), so only a real backlog triggers it; from zero tasks, the wake-up delay is about this many frames at the incoming frame rate plus two minutes."
  type        = number
  default     = 100

  validation {
    condition     = var.lag_scale_out_threshold > var.max_tasks * var.detector_batch_size * var.detector_concurrency
    error_message = "lag_scale_out_threshold must exceed max_tasks x detector_batch_size x detector_concurrency (the jobs a healthy full pool has in flight), or the pool would scale out without a backlog."
  }
}

variable "scale_in_cpu_percent" {
  description = "Remove a detector when, for scale_in_minutes, more than one runs, the lag stays below lag_scale_out_threshold and the detectors' average CPU (JPEG decoding) stays below this. The last detector goes only when the pool is idle (idle_minutes)."
  type        = number
  default     = 30

  validation {
    condition     = var.scale_in_cpu_percent >= 5 && var.scale_in_cpu_percent <= 80
    error_message = "scale_in_cpu_percent must be between 5 and 80."
  }
}

variable "scale_in_minutes" {
  description = "Minutes the scale-in condition must hold before one detector is removed."
  type        = number
  default     = 10

  validation {
    condition     = var.scale_in_minutes >= 3 && var.scale_in_minutes <= 60
    error_message = "scale_in_minutes must be between 3 and 60."
  }
}

variable "idle_minutes" {
  description = "Minutes in which the detectors finished no frame and the queue stayed empty, after which the pool drops straight to min_tasks."
  type        = number
  default     = 15

  validation {
    condition     = var.idle_minutes >= 5 && var.idle_minutes <= 1440
    error_message = "idle_minutes must be between 5 and 1440."
  }
}

variable "metric_namespace" {
  description = "CloudWatch namespace of panoptes_jobs_lag."
  type        = string
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
  description = "Environment key: secrets and snapshots are encrypted with it."
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
  description = "ARN of the snapshot bucket: the detectors may only put objects into it."
  type        = string
}

variable "log_group_name" {
  description = "Log group of the detector containers."
  type        = string
}

variable "log_group_arn" {
  description = "ARN of the detector log group."
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
  description = "ARN of the EMF log group the detectors' metrics sidecar writes to."
  type        = string
}

variable "metrics_agent_image" {
  description = "CloudWatch agent image of the detectors' metrics sidecar."
  type        = string
  default     = "public.ecr.aws/cloudwatch-agent/cloudwatch-agent:1.300062.0b1304"
}

variable "metrics_agent_parameter_arns" {
  description = "SSM parameters holding the detect sidecar's agent and Prometheus configuration (observability module, detect entry)."
  type = object({
    agent      = string
    prometheus = string
  })
}

variable "scrape_interval_seconds" {
  description = "Scrape interval of the metrics sidecars (observability module): each detector reports 60 / this frame counts a minute, which is how the scale-in alarm counts detectors."
  type        = number

  validation {
    condition     = var.scrape_interval_seconds >= 10 && var.scrape_interval_seconds <= 60
    error_message = "scrape_interval_seconds must be between 10 and 60."
  }
}

variable "extra_environment" {
  description = "Further PANOPTES__* (or RUST_LOG / OTEL_*) settings of the detectors. Never secrets."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.extra_environment) : can(regex("^(PANOPTES__[A-Z0-9_]+|RUST_LOG|OTEL_[A-Z0-9_]+)$", k))])
    error_message = "extra_environment keys must be PANOPTES__SECTION__KEY, RUST_LOG or OTEL_* names."
  }
}
