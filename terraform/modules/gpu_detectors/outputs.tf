output "service_name" {
  description = "Name of the detector ECS service."
  value       = aws_ecs_service.detect.name
}

output "autoscaling_group_name" {
  description = "Auto Scaling group of the GPU instances."
  value       = aws_autoscaling_group.gpu.name
}

output "capacity_provider_name" {
  description = "ECS capacity provider of the GPU instances."
  value       = aws_ecs_capacity_provider.gpu.name
}

output "task_role_arn" {
  description = "Task role of the detectors (s3:PutObject on snapshots only)."
  value       = module.roles.task_role_arn
}
