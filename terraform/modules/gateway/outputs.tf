output "alb_dns_name" {
  description = "DNS name of the ALB: point the API host name (CNAME or Route 53 alias) at it."
  value       = aws_lb.this.dns_name
}

output "alb_zone_id" {
  description = "Hosted zone of the ALB, for a Route 53 alias record."
  value       = aws_lb.this.zone_id
}

output "alb_arn_suffix" {
  description = "ARN suffix of the ALB (CloudWatch dimension)."
  value       = aws_lb.this.arn_suffix
}

output "target_group_arn_suffix" {
  description = "ARN suffix of the gateway target group (CloudWatch dimension)."
  value       = aws_lb_target_group.gateway.arn_suffix
}

output "service_name" {
  description = "Name of the gateway ECS service."
  value       = aws_ecs_service.gateway.name
}

output "security_group_id" {
  description = "Security group of the gateway tasks."
  value       = aws_security_group.gateway.id
}

output "task_role_arn" {
  description = "Task role of the gateways (s3:GetObject on snapshots only)."
  value       = module.roles.task_role_arn
}

output "web_acl_arn" {
  description = "ARN of the WAF web ACL, or null when enable_waf is false."
  value       = var.enable_waf ? aws_wafv2_web_acl.this[0].arn : null
}
