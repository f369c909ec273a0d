# The GPU instances. Their number is driven by the ECS capacity provider's
# managed scaling (it keeps CapacityProviderReservation at 100%, i.e. just
# enough instances for the detector tasks ECS wants to place), from
# min_tasks up to max_tasks. The ASG itself has no scaling policy.
resource "aws_autoscaling_group" "gpu" {
  name                = "${var.name}-gpu"
  vpc_zone_identifier = var.private_subnet_ids
  min_size            = var.min_tasks
  max_size            = var.max_tasks
  desired_capacity    = var.min_tasks

  # Managed termination protection: ECS, not the ASG, picks which instances
  # go, and never one that still runs a detector.
  protect_from_scale_in = true

  capacity_rebalance        = var.spot_percentage > 0
  health_check_type         = "EC2"
  health_check_grace_period = 300
  default_instance_warmup   = 300

  # Lets the dashboard chart the instance count.
  metrics_granularity = "1Minute"
  enabled_metrics = [
    "GroupDesiredCapacity",
    "GroupInServiceInstances",
    "GroupPendingInstances",
    "GroupTerminatingInstances",
  ]

  mixed_instances_policy {
    instances_distribution {
      on_demand_base_capacity                  = var.spot_percentage < 100 ? 1 : 0
      on_demand_percentage_above_base_capacity = 100 - var.spot_percentage
      spot_allocation_strategy                 = "price-capacity-optimized"
    }

    launch_template {
      launch_template_specification {
        launch_template_id = aws_launch_template.gpu.id
        version            = "$Latest"
      }

      dynamic "override" {
        for_each = var.instance_types

        content {
          instance_type = override.value
        }
      }
    }
  }

  dynamic "warm_pool" {
    for_each = var.warm_pool_size > 0 ? [1] : []

    content {
      pool_state                  = "Stopped"
      min_size                    = var.warm_pool_size
      max_group_prepared_capacity = var.warm_pool_size

      instance_reuse_policy {
        reuse_on_scale_in = true
      }
    }
  }

  # Required on an ASG behind an ECS capacity provider.
  tag {
    key                 = "AmazonECSManaged"
    value               = "true"
    propagate_at_launch = true
  }

  tag {
    key                 = "Name"
    value               = "${var.name}-gpu"
    propagate_at_launch = true
  }

  lifecycle {
    # Managed scaling owns the instance count once the group exists.
    ignore_changes = [desired_capacity]
  }
}
