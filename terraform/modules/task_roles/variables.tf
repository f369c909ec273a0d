variable "name" {
  description = "Prefix of the two role names: <name>-exec (ECS agent: pull, logs, secrets) and <name>-task (the process itself)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,58}$", var.name))
    error_message = "name must be 1-58 characters valid in an IAM role name."
  }
}

variable "kms_key_arn" {
  description = "Key that encrypts the secrets and SSM parameters the execution role reads."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "secret_arns" {
  description = "Secrets Manager secrets ECS injects into the containers (`secrets` valueFrom)."
  type        = list(string)

  validation {
    condition     = alltrue([for a in var.secret_arns : can(regex("^arn:aws[a-z-]*:secretsmanager:", a))])
    error_message = "secret_arns must be Secrets Manager secret ARNs."
  }
}

variable "ssm_parameter_arns" {
  description = "SSM parameters ECS injects into the containers (the metrics agent's configuration); may be empty."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.ssm_parameter_arns : can(regex("^arn:aws[a-z-]*:ssm:", a))])
    error_message = "ssm_parameter_arns must be SSM parameter ARNs."
  }
}

variable "log_group_arns" {
  description = "Log groups the containers' awslogs driver writes to."
  type        = list(string)

  validation {
    condition     = length(var.log_group_arns) > 0 && alltrue([for a in var.log_group_arns : can(regex("^arn:aws[a-z-]*:logs:", a))])
    error_message = "log_group_arns must be one or more CloudWatch log group ARNs."
  }
}

variable "ecr_repository_arns" {
  description = "ECR repositories the images are pulled from (empty when they come from a public registry)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.ecr_repository_arns : can(regex("^arn:aws[a-z-]*:ecr:", a))])
    error_message = "ecr_repository_arns must be ECR repository ARNs."
  }
}

variable "attach_task_policy" {
  description = "Whether the process needs any AWS permission (task_policy_json). A plain bool, so the plan knows it before the policy's ARNs exist."
  type        = bool
}

variable "task_policy_json" {
  description = "IAM policy document of what the process itself may do; used when attach_task_policy is true."
  type        = string
  default     = null
}
