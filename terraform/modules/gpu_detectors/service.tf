resource "aws_ecs_service" "detect" {
  name            = "detect"
  cluster         = var.cluster_arn
  task_definition = aws_ecs_task_definition.detect.arn
  desired_count   = var.min_tasks

  capacity_provider_strategy {
    capacity_provider = aws_ecs_capacity_provider.gpu.name
    weight            = 1
    base              = 0
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.task.id, var.data_client_security_group_id]
    assign_public_ip = false
  }

  # Fill an instance's GPUs before starting another instance (matters on
  # multi-GPU types; on one-GPU types every task gets its own instance).
  ordered_placement_strategy {
    type  = "binpack"
    field = "memory"
  }

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

  depends_on = [aws_ecs_cluster_capacity_providers.this]
}
