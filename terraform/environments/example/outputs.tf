output "api_url" {
  description = "Base URL of the Panoptes API."
  value       = var.api_domain_name != "" ? "https://${var.api_domain_name}" : "https://${module.gateway.alb_dns_name}"
}

output "alb_dns_name" {
  description = "DNS name of the ALB (target of the API host name's CNAME or alias)."
  value       = module.gateway.alb_dns_name
}

output "dashboard_url" {
  description = "CloudWatch dashboard of the environment."
  value       = module.observability.dashboard_url
}

output "ecs_cluster_name" {
  description = "ECS cluster running every Panoptes service."
  value       = module.ecs_cluster.cluster_name
}

output "ecs_service_names" {
  description = "ECS service name by process kind."
  value = merge(module.workers.service_names, {
    gateway = module.gateway.service_name
    detect  = module.gpu_detectors.service_name
  })
}

output "gpu_autoscaling_group_name" {
  description = "Auto Scaling group of the GPU instances."
  value       = module.gpu_detectors.autoscaling_group_name
}

output "log_group_names" {
  description = "CloudWatch log group by process kind."
  value       = module.observability.log_group_names
}

output "snapshot_bucket" {
  description = "S3 bucket of the snapshot JPEGs."
  value       = module.data.snapshot_bucket_name
}

output "postgres_master_secret_arn" {
  description = "Secrets Manager ARN of the Aurora master credentials (for psql and `panoptes migrate` / `create-admin` run as one-off tasks)."
  value       = module.data.postgres_master_secret_arn
}

output "secret_arns" {
  description = "Secrets Manager ARNs injected into every process."
  value       = module.data.secret_arns
}
