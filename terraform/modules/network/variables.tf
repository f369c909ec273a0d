variable "name" {
  description = "Name of the environment (e.g. panoptes-prod), used in resource names and Name tags."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name))
    error_message = "name must be 3-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "cidr_block" {
  description = "IPv4 CIDR of the VPC, /16 to /19: private subnets get a sixteenth each, public and database subnets a 256th."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition = (
      can(cidrhost(var.cidr_block, 0)) &&
      try(tonumber(split("/", var.cidr_block)[1]) >= 16 && tonumber(split("/", var.cidr_block)[1]) <= 19, false)
    )
    error_message = "cidr_block must be a valid IPv4 CIDR with a prefix length from /16 to /19 (the ALB needs public subnets of /27 or larger)."
  }
}

variable "az_count" {
  description = "Availability zones to spread subnets over (2 or 3). Aurora and the ALB need at least 2."
  type        = number
  default     = 3

  validation {
    condition     = contains([2, 3], var.az_count)
    error_message = "az_count must be 2 or 3."
  }
}

variable "availability_zones" {
  description = "Availability zone names to use, in order (the first az_count are taken). Empty: <region>a, <region>b, <region>c. Pick zones that offer the GPU instance types."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for z in var.availability_zones : can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9][a-z]$", z))])
    error_message = "availability_zones must be zone names such as eu-west-1a."
  }
}

variable "nat_gateway_per_az" {
  description = "One NAT gateway per availability zone (true: an AZ outage cannot cut the others' egress) or a single shared one (false: about 32 USD/month less per AZ, but a single point of failure for camera pulls, webhooks and AWS API calls)."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the flow log group."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "flow_log_group_name" {
  description = "CloudWatch log group (created here) that receives the VPC flow logs."
  type        = string
}

variable "flow_log_traffic_type" {
  description = "Traffic recorded by the VPC flow logs: ALL, ACCEPT or REJECT."
  type        = string
  default     = "ALL"

  validation {
    condition     = contains(["ALL", "ACCEPT", "REJECT"], var.flow_log_traffic_type)
    error_message = "flow_log_traffic_type must be ALL, ACCEPT or REJECT."
  }
}

variable "log_retention_days" {
  description = "Days flow logs are kept."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention period CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653)."
  }
}

variable "interface_endpoints" {
  description = "AWS services reached through interface VPC endpoints instead of the NAT gateways (e.g. [\"ecr.api\", \"ecr.dkr\", \"logs\", \"secretsmanager\", \"ssm\", \"ecs\", \"ecs-agent\", \"ecs-telemetry\"]). Each costs about 7.30 USD/month per AZ plus traffic; worthwhile once NAT data charges exceed that. S3 always has a (free) gateway endpoint."
  type        = set(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.interface_endpoints : can(regex("^[a-z0-9.-]+$", s))])
    error_message = "interface_endpoints entries are service name suffixes such as ecr.api or logs."
  }
}
