locals {
  worker_container = {
    for role in local.roles : role => {
      name      = role
      image     = var.image
      essential = true
      # `panoptes worker --role <role>`, independent of the image's ENTRYPOINT.
      entryPoint = ["panoptes"]
      command    = ["worker", "--role", role]

      environment = [for k, v in merge(var.extra_environment, local.worker_environment[role]) : { name = k, value = v }]
      secrets     = [for k, v in local.worker_secrets[role] : { name = k, valueFrom = v }]

      readonlyRootFilesystem = true
      mountPoints = [{
        sourceVolume  = "data"
        containerPath = "/var/lib/panoptes"
        readOnly      = false
      }]

      # `/healthz` on the metrics listener, asked by the binary itself (the
      # image has no shell nor curl): a hung process is replaced.
      healthCheck = {
        command     = ["CMD", "panoptes", "healthcheck"]
        interval    = 15
        timeout     = 5
        retries     = 3
        startPeriod = 30
      }

      # SIGTERM: leases (cameras, devices, rules) are released and in-flight
      # work finishes; a role that dies stops the process with a non-zero
      # status and ECS starts a new task.
      stopTimeout = 30

      linuxParameters = {
        initProcessEnabled = true
      }

      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = var.log_group_names[role]
          awslogs-region        = local.region
          awslogs-stream-prefix = role
          mode                  = "non-blocking"
          max-buffer-size       = "25m"
        }
      }
    }
  }

  # The schedule tasks' sidecar publishes the frame queue gauges. Essential:
  # without it the GPU pool cannot scale, so a dead sidecar should recycle
  # the task (the schedule role is safe to restart; replicas share the work).
  schedule_metrics_agent = {
    name              = "metrics-agent"
    image             = var.metrics_agent_image
    essential         = true
    cpu               = 64
    memoryReservation = 64
    memory            = 256

    secrets = [
      { name = "CW_CONFIG_CONTENT", valueFrom = var.metrics_agent_parameter_arns.agent },
      { name = "PROMETHEUS_CONFIG_CONTENT", valueFrom = var.metrics_agent_parameter_arns.prometheus },
    ]

    dependsOn = [{
      containerName = "schedule"
      condition     = "START"
    }]

    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = var.log_group_names["metrics-agent"]
        awslogs-region        = local.region
        awslogs-stream-prefix = "schedule"
        mode                  = "non-blocking"
      }
    }
  }
}

locals {
  pipeline_roles = toset(["ingest", "analytics", "notify"])
}

# ingest, analytics, notify: the role's container alone.
resource "aws_ecs_task_definition" "role" {
  for_each = local.pipeline_roles

  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.roles[each.key].cpu
  memory                   = var.roles[each.key].memory
  execution_role_arn       = module.roles[each.key].execution_role_arn
  task_role_arn            = module.roles[each.key].task_role_arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # PANOPTES__DATA__DIR: task-scoped scratch space on Fargate ephemeral storage.
  volume {
    name = "data"
  }

  container_definitions = jsonencode([local.worker_container[each.key]])
}

# schedule: the role plus the metrics sidecar that publishes the queue lag.
resource "aws_ecs_task_definition" "schedule" {
  #checkov:skip=CKV_AWS_336:The schedule container's root filesystem is read-only; the CloudWatch agent sidecar's start script writes its translated configuration under /opt/aws/amazon-cloudwatch-agent and cannot run read-only.
  family                   = "${var.name}-schedule"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.roles.schedule.cpu
  memory                   = var.roles.schedule.memory
  execution_role_arn       = module.roles["schedule"].execution_role_arn
  task_role_arn            = module.roles["schedule"].task_role_arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  volume {
    name = "data"
  }

  container_definitions = jsonencode([local.worker_container["schedule"], local.schedule_metrics_agent])
}

locals {
  task_definition_arns = merge(
    { for role, td in aws_ecs_task_definition.role : role => td.arn },
    { schedule = aws_ecs_task_definition.schedule.arn },
  )
}
