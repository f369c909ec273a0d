resource "aws_ecs_service" "role" {
  for_each = local.roles

  name             = each.key
  cluster          = var.cluster_arn
  task_definition  = local.task_definition_arns[each.key]
  launch_type      = "FARGATE"
  platform_version = "LATEST"
  desired_count    = var.roles[each.key].min_count

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.role[each.key].id, var.data_client_security_group_id]
    assign_public_ip = false
  }

  # Roles coordinate through leases in Redis, so a rolling replacement with
  # both generations briefly running side by side is safe.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"

  lifecycle {
    ignore_changes = [desired_count]
  }
}

resource "aws_appautoscaling_target" "role" {
  for_each = local.roles

  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${var.cluster_name}/${aws_ecs_service.role[each.key].name}"
  min_capacity       = var.roles[each.key].min_count
  max_capacity       = var.roles[each.key].max_count
}

# CPU target tracking for the roles allowed to grow (max_count > min_count):
# ingest decodes video, analytics tracks and aggregates, notify signs and
# sends webhooks; all of it is CPU-bound.
resource "aws_appautoscaling_policy" "cpu" {
  for_each = { for role in local.roles : role => var.roles[role] if var.roles[role].max_count > var.roles[role].min_count }

  name               = "${var.name}-${each.key}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.role[each.key].service_namespace
  scalable_dimension = aws_appautoscaling_target.role[each.key].scalable_dimension
  resource_id        = aws_appautoscaling_target.role[each.key].resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = each.value.cpu_target_percent
    scale_out_cooldown = 60
    scale_in_cooldown  = 300

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
