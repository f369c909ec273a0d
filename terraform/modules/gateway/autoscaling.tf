# Two target-tracking policies; Application Auto Scaling runs the larger of
# their answers on scale-out and scales in only when both allow it.
#  - CPU: request handling, password hashing, JSON.
#  - Open SSE streams per task (panoptes_sse_streams, scraped by the metrics
#    sidecar into CloudWatch): mostly idle sockets that cost memory, file
#    descriptors and lease renewals but hardly any CPU, so CPU alone would
#    let one gateway collect far too many of them.
# Scale-in is slow: every removed task drops its SSE streams, which the
# clients then resume on the others.

resource "aws_appautoscaling_target" "gateway" {
  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${var.cluster_name}/${aws_ecs_service.gateway.name}"
  min_capacity       = var.min_count
  max_capacity       = var.max_count
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${var.name}-gateway-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.gateway.service_namespace
  scalable_dimension = aws_appautoscaling_target.gateway.scalable_dimension
  resource_id        = aws_appautoscaling_target.gateway.resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target_percent
    scale_out_cooldown = 60
    scale_in_cooldown  = 600

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "sse_streams" {
  name               = "${var.name}-gateway-sse-streams"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.gateway.service_namespace
  scalable_dimension = aws_appautoscaling_target.gateway.scalable_dimension
  resource_id        = aws_appautoscaling_target.gateway.resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.sse_streams_per_task
    scale_out_cooldown = 60
    scale_in_cooldown  = 900

    # Every task's sidecar reports its own gauge under the same dimensions,
    # so the Average over a minute is the mean number of streams per task:
    # the per-capacity-unit metric target tracking needs.
    customized_metric_specification {
      namespace   = var.metric_namespace
      metric_name = "panoptes_sse_streams"
      statistic   = "Average"

      dimensions {
        name  = "Environment"
        value = var.environment
      }

      dimensions {
        name  = "Service"
        value = "gateway"
      }
    }
  }
}
