data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  name             = "${var.name_prefix}-${var.environment}"
  log_group_prefix = "/${var.name_prefix}/${var.environment}"
  logs_arn_prefix  = "arn:${data.aws_partition.current.partition}:logs:${var.region}:${data.aws_caller_identity.current.account_id}:log-group"
}

module "kms" {
  source = "../../modules/kms"

  name             = local.name
  log_group_prefix = local.log_group_prefix
  # Log groups whose names AWS dictates: RDS exports and WAF logs.
  extra_log_group_arn_patterns = [
    "${local.logs_arn_prefix}:/aws/rds/cluster/${local.name}/*",
    "${local.logs_arn_prefix}:aws-waf-logs-${local.name}*",
  ]
}

module "network" {
  source = "../../modules/network"

  name                = local.name
  cidr_block          = var.vpc_cidr
  az_count            = var.az_count
  availability_zones  = var.availability_zones
  nat_gateway_per_az  = var.nat_gateway_per_az
  kms_key_arn         = module.kms.key_arn
  flow_log_group_name = "${local.log_group_prefix}/vpc-flow-logs"
  log_retention_days  = var.log_retention_days
}

module "data" {
  source = "../../modules/data"

  name                = local.name
  vpc_id              = module.network.vpc_id
  database_subnet_ids = module.network.database_subnet_ids
  kms_key_arn         = module.kms.key_arn
  log_group_prefix    = local.log_group_prefix
  log_retention_days  = var.log_retention_days
  deletion_protection = var.deletion_protection

  postgres_min_acu        = var.postgres_min_acu
  postgres_max_acu        = var.postgres_max_acu
  postgres_instance_count = var.postgres_instance_count

  redis_node_type  = var.redis_node_type
  redis_node_count = var.redis_node_count

  snapshot_expiry_days  = var.snapshot_expiry_days
  access_logs_bucket    = module.observability.access_logs_bucket
  force_destroy_buckets = !var.deletion_protection
}

module "ecs_cluster" {
  source = "../../modules/ecs_cluster"

  name = local.name
}

module "observability" {
  source = "../../modules/observability"

  name                  = local.name
  environment           = var.environment
  log_group_prefix      = local.log_group_prefix
  kms_key_arn           = module.kms.key_arn
  log_retention_days    = var.log_retention_days
  alarm_actions         = var.alarm_sns_topic_arns
  force_destroy_buckets = !var.deletion_protection

  # What the dashboard and alarms look at.
  ecs_cluster_name = module.ecs_cluster.cluster_name
  ecs_service_names = merge(module.workers.service_names, {
    gateway = module.gateway.service_name
    detect  = module.gpu_detectors.service_name
  })
  alb_arn_suffix              = module.gateway.alb_arn_suffix
  target_group_arn_suffix     = module.gateway.target_group_arn_suffix
  gpu_autoscaling_group_name  = module.gpu_detectors.autoscaling_group_name
  postgres_cluster_identifier = module.data.postgres_cluster_identifier
  redis_replication_group_id  = module.data.redis_replication_group_id
}

module "gateway" {
  source = "../../modules/gateway"

  name                          = local.name
  environment                   = var.environment
  vpc_id                        = module.network.vpc_id
  vpc_cidr_block                = module.network.vpc_cidr_block
  public_subnet_ids             = module.network.public_subnet_ids
  private_subnet_ids            = module.network.private_subnet_ids
  data_client_security_group_id = module.data.client_security_group_id
  ingress_cidr_blocks           = var.alb_ingress_cidr_blocks
  camera_egress_ports           = var.camera_egress_ports

  certificate_arn      = var.certificate_arn
  idle_timeout_seconds = var.alb_idle_timeout_seconds
  deletion_protection  = var.deletion_protection
  access_logs_bucket   = module.observability.access_logs_bucket
  enable_waf           = var.enable_waf
  kms_key_arn          = module.kms.key_arn

  cluster_arn          = module.ecs_cluster.cluster_arn
  cluster_name         = module.ecs_cluster.cluster_name
  image                = var.gateway_image
  cpu_architecture     = var.cpu_architecture
  ecr_repository_arns  = var.ecr_repository_arns
  min_count            = var.gateway_min_count
  max_count            = var.gateway_max_count
  sse_streams_per_task = var.sse_streams_per_task
  extra_environment    = var.extra_environment

  secret_arns          = module.data.secret_arns
  snapshot_bucket_name = module.data.snapshot_bucket_name
  snapshot_bucket_arn  = module.data.snapshot_bucket_arn

  log_group_name               = module.observability.log_group_names["gateway"]
  log_group_arn                = module.observability.log_group_arns["gateway"]
  metrics_agent_log_group_name = module.observability.log_group_names["metrics-agent"]
  metrics_agent_log_group_arn  = module.observability.log_group_arns["metrics-agent"]
  prometheus_log_group_arn     = module.observability.prometheus_log_group_arn
  metrics_agent_parameter_arns = module.observability.metrics_agent_parameter_arns["gateway"]
  metric_namespace             = module.observability.metric_namespace
}

module "workers" {
  source = "../../modules/workers"

  name                          = local.name
  vpc_id                        = module.network.vpc_id
  private_subnet_ids            = module.network.private_subnet_ids
  data_client_security_group_id = module.data.client_security_group_id
  camera_egress_ports           = var.camera_egress_ports
  webhook_egress_ports          = var.webhook_egress_ports

  cluster_arn         = module.ecs_cluster.cluster_arn
  cluster_name        = module.ecs_cluster.cluster_name
  image               = var.worker_image
  cpu_architecture    = var.cpu_architecture
  ecr_repository_arns = var.ecr_repository_arns
  roles               = var.worker_roles
  extra_environment   = var.extra_environment

  secret_arns          = module.data.secret_arns
  kms_key_arn          = module.kms.key_arn
  snapshot_bucket_name = module.data.snapshot_bucket_name
  snapshot_bucket_arn  = module.data.snapshot_bucket_arn

  log_group_names              = module.observability.log_group_names
  log_group_arns               = module.observability.log_group_arns
  prometheus_log_group_arn     = module.observability.prometheus_log_group_arn
  metrics_agent_parameter_arns = module.observability.metrics_agent_parameter_arns["schedule"]
}

module "gpu_detectors" {
  source = "../../modules/gpu_detectors"

  name                          = local.name
  environment                   = var.environment
  vpc_id                        = module.network.vpc_id
  private_subnet_ids            = module.network.private_subnet_ids
  data_client_security_group_id = module.data.client_security_group_id
  cluster_name                  = module.ecs_cluster.cluster_name
  cluster_arn                   = module.ecs_cluster.cluster_arn

  instance_types          = var.gpu_instance_types
  spot_percentage         = var.gpu_spot_percentage
  warm_pool_size          = var.gpu_warm_pool_size
  image                   = var.worker_gpu_image
  ecr_repository_arns     = var.ecr_repository_arns
  min_tasks               = var.gpu_min_tasks
  max_tasks               = var.gpu_max_tasks
  lag_scale_out_threshold = var.gpu_lag_scale_out_threshold
  metric_namespace        = module.observability.metric_namespace
  extra_environment       = var.extra_environment

  secret_arns          = module.data.secret_arns
  kms_key_arn          = module.kms.key_arn
  snapshot_bucket_name = module.data.snapshot_bucket_name
  snapshot_bucket_arn  = module.data.snapshot_bucket_arn
  log_group_name       = module.observability.log_group_names["detect"]
  log_group_arn        = module.observability.log_group_arns["detect"]

  metrics_agent_log_group_name = module.observability.log_group_names["metrics-agent"]
  metrics_agent_log_group_arn  = module.observability.log_group_arns["metrics-agent"]
  prometheus_log_group_arn     = module.observability.prometheus_log_group_arn
  metrics_agent_parameter_arns = module.observability.metrics_agent_parameter_arns["detect"]
  scrape_interval_seconds      = module.observability.scrape_interval_seconds
}

resource "aws_route53_record" "api" {
  count = var.api_domain_name != "" && var.route53_zone_id != "" ? 1 : 0

  zone_id = var.route53_zone_id
  name    = var.api_domain_name
  type    = "A"

  alias {
    name                   = module.gateway.alb_dns_name
    zone_id                = module.gateway.alb_zone_id
    evaluate_target_health = true
  }
}
