# Scaling the detectors on the frame queue lag, down to min_tasks (zero
# allowed).
#
# The signal: panoptes_jobs_lag = jobs waiting for the `detect` consumer
# group plus jobs handed out and not yet acknowledged, over the 4 shards.
# It is published to CloudWatch by the schedule tasks' metrics sidecar
# (observability module), NOT by the detectors: at zero detectors nothing
# on the GPU side runs, yet the lag still arrives and can wake the pool.
# The detectors' own sidecar adds panoptes_detect_frames_total (frames
# finished, as increases per scrape).
#
# Three step-scaling policies on the ECS service's desired count; the
# capacity provider then starts or stops GPU instances to fit the tasks:
#  1. scale out  - lag >= T for 2 minutes: +1, from 2T +2, from 5T +4.
#                  With no detector the lag grows with every frame, so the
#                  same alarm wakes the pool from zero.
#  2. scale in   - more than one detector, lag < T and detector CPU below
#                  scale_in_cpu_percent for scale_in_minutes: -1. The lag
#                  alone cannot tell spare capacity (a keeping-up pool and
#                  an oversized one both show a small lag); idle CPU can.
#                  It never removes the last detector.
#  3. idle       - no frame finished and lag 0 for idle_minutes: straight
#                  to min_tasks. "Lag 0" alone would not do: a trickle of
#                  frames (one camera at 2 fps) is in the queue only for
#                  milliseconds, so the sampled gauge reads 0 although work
#                  arrives, and scaling to zero would drop it every time.
#
# Missing data (the schedule tasks or a sidecar down): every scaling alarm
# treats it as not breaching, so the pool holds its size rather than
# scaling on a guess; the observability module's queue-lag-metric-missing
# alarm tells a person. Target tracking is not used: it cannot scale out of
# zero tasks and does not act on insufficient data.

locals {
  lag_dimensions = {
    Environment = var.environment
    Service     = "schedule"
  }
  frames_dimensions = {
    Environment = var.environment
    Service     = "detect"
  }
  t = var.lag_scale_out_threshold
  # Frame counts each detector's sidecar reports per minute.
  samples_per_minute = 60 / var.scrape_interval_seconds
}

resource "aws_appautoscaling_target" "detect" {
  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = "service/${var.cluster_name}/${aws_ecs_service.detect.name}"
  min_capacity       = var.min_tasks
  max_capacity       = var.max_tasks
}

# ------------------------------------------------------------ 1. scale out

resource "aws_appautoscaling_policy" "scale_out" {
  name               = "${var.name}-detect-lag-scale-out"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.detect.service_namespace
  scalable_dimension = aws_appautoscaling_target.detect.scalable_dimension
  resource_id        = aws_appautoscaling_target.detect.resource_id

  step_scaling_policy_configuration {
    adjustment_type         = "ChangeInCapacity"
    metric_aggregation_type = "Maximum"
    # An instance boots and pulls the image in a few minutes; adding more
    # before the last ones count would overshoot.
    cooldown = 180

    # Bounds are offsets from the alarm threshold T.
    step_adjustment {
      metric_interval_lower_bound = 0
      metric_interval_upper_bound = local.t
      scaling_adjustment          = 1
    }

    step_adjustment {
      metric_interval_lower_bound = local.t
      metric_interval_upper_bound = 4 * local.t
      scaling_adjustment          = 2
    }

    step_adjustment {
      metric_interval_lower_bound = 4 * local.t
      scaling_adjustment          = 4
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "lag_high" {
  alarm_name          = "${var.name}-detect-lag-high"
  alarm_description   = "Frame queue lag >= ${local.t} jobs for 2 minutes: add detectors (from zero too)."
  namespace           = var.metric_namespace
  metric_name         = "panoptes_jobs_lag"
  dimensions          = local.lag_dimensions
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 2
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = local.t
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_appautoscaling_policy.scale_out.arn]
}

# ------------------------------------------------------------- 2. scale in

resource "aws_appautoscaling_policy" "scale_in" {
  name               = "${var.name}-detect-spare-scale-in"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.detect.service_namespace
  scalable_dimension = aws_appautoscaling_target.detect.scalable_dimension
  resource_id        = aws_appautoscaling_target.detect.resource_id

  step_scaling_policy_configuration {
    adjustment_type         = "ChangeInCapacity"
    metric_aggregation_type = "Maximum"
    cooldown                = 300

    step_adjustment {
      metric_interval_lower_bound = 0
      scaling_adjustment          = -1
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "spare_capacity" {
  alarm_name          = "${var.name}-detect-spare-capacity"
  alarm_description   = "More than one detector, no backlog and detector CPU < ${var.scale_in_cpu_percent}% for ${var.scale_in_minutes} minutes: remove one detector."
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  evaluation_periods  = var.scale_in_minutes
  datapoints_to_alarm = var.scale_in_minutes
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_appautoscaling_policy.scale_in.arn]

  metric_query {
    id          = "spare"
    expression  = "IF(lag < ${local.t} AND cpu < ${var.scale_in_cpu_percent} AND reports / ${local.samples_per_minute} > 1.5, 1, 0)"
    label       = "spare detector capacity"
    return_data = true
  }

  metric_query {
    id = "lag"

    metric {
      namespace   = var.metric_namespace
      metric_name = "panoptes_jobs_lag"
      dimensions  = local.lag_dimensions
      stat        = "Maximum"
      period      = 60
    }
  }

  # No data at zero tasks, so this alarm cannot fire then.
  metric_query {
    id = "cpu"

    metric {
      namespace   = "AWS/ECS"
      metric_name = "CPUUtilization"
      dimensions = {
        ClusterName = var.cluster_name
        ServiceName = aws_ecs_service.detect.name
      }
      stat   = "Average"
      period = 60
    }
  }

  # Reports per minute / reports per detector per minute = detectors.
  metric_query {
    id = "reports"

    metric {
      namespace   = var.metric_namespace
      metric_name = "panoptes_detect_frames_total"
      dimensions  = local.frames_dimensions
      stat        = "SampleCount"
      period      = 60
    }
  }
}

# ------------------------------------------------------------------ 3. idle

resource "aws_appautoscaling_policy" "idle" {
  name               = "${var.name}-detect-idle-to-minimum"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.detect.service_namespace
  scalable_dimension = aws_appautoscaling_target.detect.scalable_dimension
  resource_id        = aws_appautoscaling_target.detect.resource_id

  step_scaling_policy_configuration {
    adjustment_type         = "ExactCapacity"
    metric_aggregation_type = "Maximum"
    cooldown                = 300

    step_adjustment {
      metric_interval_lower_bound = 0
      scaling_adjustment          = var.min_tasks
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "queue_idle" {
  alarm_name          = "${var.name}-detect-idle"
  alarm_description   = "No frame detected and an empty frame queue for ${var.idle_minutes} minutes: scale detectors to ${var.min_tasks}."
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  evaluation_periods  = var.idle_minutes
  datapoints_to_alarm = var.idle_minutes
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_appautoscaling_policy.idle.arn]

  metric_query {
    id          = "idle"
    expression  = "IF(frames <= 0 AND lag <= 0, 1, 0)"
    label       = "detectors idle"
    return_data = true
  }

  metric_query {
    id = "frames"

    metric {
      namespace   = var.metric_namespace
      metric_name = "panoptes_detect_frames_total"
      dimensions  = local.frames_dimensions
      stat        = "Sum"
      period      = 60
    }
  }

  metric_query {
    id = "lag"

    metric {
      namespace   = var.metric_namespace
      metric_name = "panoptes_jobs_lag"
      dimensions  = local.lag_dimensions
      stat        = "Maximum"
      period      = 60
    }
  }
}
