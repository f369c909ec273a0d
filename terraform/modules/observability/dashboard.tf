locals {
  region = data.aws_region.current.region
  ns     = var.metric_namespace
  env    = var.environment

  # Each widget is a 12 x 6 tile; two per row.
  widgets = [
    {
      title = "API: requests and errors (ALB)"
      stat  = "Sum"
      metrics = [
        ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", var.alb_arn_suffix],
        ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", var.alb_arn_suffix],
        ["AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "LoadBalancer", var.alb_arn_suffix],
        ["AWS/ApplicationELB", "HTTPCode_Target_4XX_Count", "LoadBalancer", var.alb_arn_suffix],
      ]
    },
    {
      title = "API: target response time p50 / p99 (s)"
      stat  = "p99"
      metrics = [
        ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", var.alb_arn_suffix, { stat = "p50" }],
        ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", var.alb_arn_suffix, { stat = "p99" }],
      ]
    },
    {
      title = "SSE streams: total and per gateway task"
      stat  = "Average"
      metrics = [
        [local.ns, "panoptes_sse_streams", "Environment", local.env, "Service", "gateway", { stat = "Average", label = "per task (scaling metric)" }],
        [local.ns, "panoptes_sse_subscribed_users", "Environment", local.env, "Service", "gateway", { stat = "Average", label = "subscribed users per task" }],
        ["AWS/ApplicationELB", "ActiveConnectionCount", "LoadBalancer", var.alb_arn_suffix, { stat = "Sum", label = "ALB active connections", yAxis = "right" }],
      ]
    },
    {
      title = "Gateway: healthy targets and running tasks"
      stat  = "Minimum"
      metrics = [
        ["AWS/ApplicationELB", "HealthyHostCount", "TargetGroup", var.target_group_arn_suffix, "LoadBalancer", var.alb_arn_suffix],
        ["AWS/ApplicationELB", "UnHealthyHostCount", "TargetGroup", var.target_group_arn_suffix, "LoadBalancer", var.alb_arn_suffix, { stat = "Maximum" }],
        ["AWS/ECS", "CPUUtilization", "ClusterName", var.ecs_cluster_name, "ServiceName", var.ecs_service_names["gateway"], { stat = "SampleCount", label = "running tasks" }],
      ]
    },
    {
      title = "Frame queue: lag, waiting, pending (jobs)"
      stat  = "Maximum"
      metrics = [
        [local.ns, "panoptes_jobs_lag", "Environment", local.env, "Service", "schedule", { label = "lag (GPU scaling metric)" }],
        [local.ns, "panoptes_jobs_waiting", "Environment", local.env, "Service", "schedule"],
        [local.ns, "panoptes_jobs_pending", "Environment", local.env, "Service", "schedule"],
        [local.ns, "panoptes_jobs_dead_letters", "Environment", local.env, "Service", "schedule", { yAxis = "right" }],
      ]
    },
    {
      title = "Detection: oldest job (s), frames per minute, detectors"
      stat  = "Maximum"
      metrics = [
        [local.ns, "panoptes_jobs_oldest_age_seconds", "Environment", local.env, "Service", "schedule"],
        [local.ns, "panoptes_detect_frames_total", "Environment", local.env, "Service", "detect", { stat = "Sum", label = "frames detected / min", yAxis = "right" }],
        ["AWS/ECS", "CPUUtilization", "ClusterName", var.ecs_cluster_name, "ServiceName", var.ecs_service_names["detect"], { stat = "SampleCount", label = "detect tasks", yAxis = "right" }],
        ["AWS/AutoScaling", "GroupInServiceInstances", "AutoScalingGroupName", var.gpu_autoscaling_group_name, { label = "GPU instances", yAxis = "right" }],
      ]
    },
    {
      title = "CPU utilization by service (%)"
      stat  = "Average"
      metrics = [
        for role, service in var.ecs_service_names :
        ["AWS/ECS", "CPUUtilization", "ClusterName", var.ecs_cluster_name, "ServiceName", service, { label = role }]
      ]
    },
    {
      title = "Memory utilization by service (%)"
      stat  = "Average"
      metrics = [
        for role, service in var.ecs_service_names :
        ["AWS/ECS", "MemoryUtilization", "ClusterName", var.ecs_cluster_name, "ServiceName", service, { label = role }]
      ]
    },
    {
      title = "Aurora: capacity (ACU) and connections"
      stat  = "Maximum"
      metrics = [
        ["AWS/RDS", "ServerlessDatabaseCapacity", "DBClusterIdentifier", var.postgres_cluster_identifier],
        ["AWS/RDS", "ACUUtilization", "DBClusterIdentifier", var.postgres_cluster_identifier, { yAxis = "right" }],
        ["AWS/RDS", "DatabaseConnections", "DBClusterIdentifier", var.postgres_cluster_identifier, { stat = "Sum", yAxis = "right" }],
      ]
    },
    {
      title = "Redis: engine CPU and memory (%)"
      stat  = "Maximum"
      metrics = [
        [{ expression = "SEARCH('{AWS/ElastiCache,CacheClusterId} MetricName=\"EngineCPUUtilization\" ${var.redis_replication_group_id}', 'Maximum', 60)", id = "cpu", label = "engine CPU" }],
        [{ expression = "SEARCH('{AWS/ElastiCache,CacheClusterId} MetricName=\"DatabaseMemoryUsagePercentage\" ${var.redis_replication_group_id}', 'Maximum', 60)", id = "mem", label = "memory" }],
      ]
    },
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name
  dashboard_body = jsonencode({
    widgets = [
      for i, w in local.widgets : {
        type   = "metric"
        x      = (i % 2) * 12
        y      = floor(i / 2) * 6
        width  = 12
        height = 6
        properties = {
          title   = w.title
          region  = local.region
          stat    = w.stat
          period  = 60
          view    = "timeSeries"
          stacked = false
          metrics = w.metrics
        }
      }
    ]
  })
}
