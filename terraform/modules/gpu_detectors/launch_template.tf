data "aws_ssm_parameter" "gpu_ami" {
  name = var.ami_ssm_parameter
}

locals {
  # /etc/ecs/ecs.config of every GPU instance.
  ecs_config = join("\n", [
    "ECS_CLUSTER=${var.cluster_name}",
    "ECS_ENABLE_GPU_SUPPORT=true",
    # awsvpc tasks must not reach the instance metadata (the instance role).
    "ECS_AWSVPC_BLOCK_IMDS=true",
    "ECS_ENABLE_TASK_IAM_ROLE=true",
    "ECS_ENABLE_SPOT_INSTANCE_DRAINING=true",
    # The CUDA image is large: keep it cached across task restarts.
    "ECS_IMAGE_PULL_BEHAVIOR=prefer-cached",
    "ECS_CONTAINER_STOP_TIMEOUT=30s",
    # Instances leaving the warm pool register only once in service.
    "ECS_WARM_POOLS_CHECK=${var.warm_pool_size > 0}",
  ])
}

resource "aws_launch_template" "gpu" {
  name_prefix            = "${var.name}-gpu-"
  description            = "ECS GPU-optimized AMI joining ${var.cluster_name}"
  image_id               = data.aws_ssm_parameter.gpu_ami.insecure_value
  update_default_version = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.instance.arn
  }

  vpc_security_group_ids = [aws_security_group.instance.id]

  # IMDSv2 only, one hop: containers cannot read the instance's credentials.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  block_device_mappings {
    device_name = "/dev/xvda"

    ebs {
      volume_size           = var.root_volume_size_gb
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  monitoring {
    enabled = true
  }

  user_data = base64encode(<<-EOT
    #!/bin/bash
    set -euo pipefail
    cat >> /etc/ecs/ecs.config <<'CONFIG'
    ${local.ecs_config}
    CONFIG
  EOT
  )

  tag_specifications {
    resource_type = "instance"

    tags = {
      Name = "${var.name}-gpu"
    }
  }

  tag_specifications {
    resource_type = "volume"

    tags = {
      Name = "${var.name}-gpu"
    }
  }
}
