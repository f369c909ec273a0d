resource "aws_ecs_task_definition" "detect" {
  #checkov:skip=CKV_AWS_336:The detect container's root filesystem is read-only; the CloudWatch agent sidecar's start script writes its translated configuration under /opt/aws/amazon-cloudwatch-agent and cannot run read-only.
  family                   = "${var.name}-detect"
  requires_compatibilities = ["EC2"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = module.roles.execution_role_arn
  task_role_arn            = module.roles.task_role_arn

  # Task-scoped scratch space on the instance (nothing must outlive the task).
  volume {
    name = "data"
  }

  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([local.detect_container, local.metrics_agent_container])
}

locals {
  detect_container = {
    name      = "detect"
    image     = var.image
    essential = true
    # `panoptes worker --role detect`, independent of the image's ENTRYPOINT.
    entryPoint = ["panoptes"]
    command    = ["worker", "--role", "detect"]

    # One whole GPU per task; ECS exposes only that device to the container.
    resourceRequirements = [{
      type  = "GPU"
      value = "1"
    }]

    environment = [for k, v in merge(var.extra_environment, local.detect_environment) : { name = k, value = v }]
    secrets     = [for k, v in local.detect_secrets : { name = k, valueFrom = v }]

    readonlyRootFilesystem = true
    mountPoints = [
      { sourceVolume = "data", containerPath = "/var/lib/panoptes", readOnly = false },
      { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
    ]

    # `/healthz` asked by the binary itself; the model loads in the start period.
    healthCheck = {
      command     = ["CMD", "panoptes", "healthcheck"]
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 60
    }

    # SIGTERM: batches in flight finish and are acknowledged; anything left
    # is re-delivered to another detector after jobs.visibility_seconds.
    stopTimeout = 30

    linuxParameters = {
      initProcessEnabled = true
    }

    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = var.log_group_name
        awslogs-region        = local.region
        awslogs-stream-prefix = "detect"
        mode                  = "non-blocking"
        max-buffer-size       = "25m"
      }
    }
  }

  # Publishes panoptes_detect_frames_total (scale-in and idle decisions).
  # Not essential: detection goes on without it; the pool then holds its
  # size, as the scaling alarms treat missing data as not breaching.
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
        awslogs-region        = local.region
        awslogs-stream-prefix = "detect"
        mode                  = "non-blocking"
      }
    }
  }
}
