resource "aws_ecs_service" "gateway" {
  name             = "gateway"
  cluster          = var.cluster_arn
  task_definition  = aws_ecs_task_definition.gateway.arn
  launch_type      = "FARGATE"
  platform_version = "LATEST"
  desired_count    = var.min_count

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.gateway.id, var.data_client_security_group_id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.gateway.arn
    container_name   = "gateway"
    container_port   = 8080
  }

  # Migrations run at start-up: give a fresh task time before /readyz counts.
  health_check_grace_period_seconds = 60

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"

  # The task count belongs to autoscaling after creation.
  lifecycle {
    ignore_changes = [desired_count]
  }

  depends_on = [aws_lb_listener.https]
}
