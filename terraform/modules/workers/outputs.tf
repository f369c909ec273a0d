output "service_names" {
  description = "ECS service name by worker role."
  value       = { for role, s in aws_ecs_service.role : role => s.name }
}

output "security_group_ids" {
  description = "Security group by worker role."
  value       = { for role, g in aws_security_group.role : role => g.id }
}

output "task_role_arns" {
  description = "Task role by worker role."
  value       = { for role, m in module.roles : role => m.task_role_arn }
}
