locals {
  gateway_container = {
    name      = "gateway"
    image     = var.image
    essential = true
    # Explicit, so the task does not depend on the image's ENTRYPOINT.
    entryPoint = ["panoptes-gateway"]

    portMappings = [{
      containerPort = 8080
      protocol      = "tcp"
      name          = "http"
      appProtocol   = "http"
    }]

    environment = [for k, v in merge(var.extra_environment, local.gateway_environment) : { name = k, value = v }]
    secrets     = [for k, v in local.gateway_secrets : { name = k, valueFrom = v }]

    readonlyRootFilesystem = true
    mountPoints = [{
      sourceVolume  = "data"
      containerPath = "/var/lib/panoptes"
      readOnly      = false
    }]

    # Every SSE stream is a socket: raise the descriptor limit (the gateway
    # lifts its soft limit to the hard one and sizes max_connections by it).
    ulimits = [{
      name      = "nofile"
      softLimit = 65536
      hardLimit = 1048576
    }]

    # `/healthz` asked by the binary itself (no shell nor curl in the image);
    # the ALB's target health uses /readyz.
    healthCheck = {
      command     = ["CMD", "panoptes-gateway", "healthcheck"]
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 20
    }

    # SIGTERM ends the SSE streams and lets requests finish within
    # server.shutdown_grace_seconds (10 s); SIGKILL comes 30 s after.
    stopTimeout = 30

    linuxParameters = {
      initProcessEnabled = true
    }

    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = var.log_group_name
        awslogs-region        = data.aws_region.current.region
        awslogs-stream-prefix = "gateway"
        mode                  = "non-blocking"
        max-buffer-size       = "25m"
      }
    }
  }

  # Not essential: losing the sidecar must not cut every SSE stream of the
  # task. The service then scales on CPU alone until ECS replaces the task.
  metrics_agent_container = {
    name              = "metrics-agent"
    image             = var.metrics_agent_image
    essential         = false
    cpu               = 64
    memoryReservation = 64
    memory            = 256

    secrets = [
      { name = "CW_CONFIG_CONTENT", valueFrom = var.metrics_agent_parameter_arns.agent },
      { name = "PROMETHEUS_CONFIG_CONTENT", valueFrom = var.metrics_agent_parameter_arns.prometheus },
    ]

    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = var.metrics_agent_log_group_name
        awslogs-region        = data.aws_region.current.region
        awslogs-stream-prefix = "gateway"
        mode                  = "non-blocking"
      }
    }
  }
}

resource "aws_ecs_task_definition" "gateway" {
  #checkov:skip=CKV_AWS_336:The gateway container's root filesystem is read-only; the CloudWatch agent sidecar's start script writes its translated configuration under /opt/aws/amazon-cloudwatch-agent and cannot run read-only.
  family                   = "${var.name}-gateway"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = module.roles.execution_role_arn
  task_role_arn            = module.roles.task_role_arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # PANOPTES__DATA__DIR: task-scoped scratch space on Fargate ephemeral
  # storage (nothing there must outlive the task: the store is PostgreSQL).
  volume {
    name = "data"
  }

  container_definitions = jsonencode([local.gateway_container, local.metrics_agent_container])
}
