# One cluster for every Panoptes service: the gateways and the CPU worker
# roles on Fargate, the detectors on the GPU capacity provider (which the
# gpu_detectors module attaches to this cluster). ECS Exec is not enabled on
# any service, so no task role carries the SSM session permissions.

resource "aws_ecs_cluster" "this" {
  name = var.name

  # Task-level CPU, memory, network and storage metrics.
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}
