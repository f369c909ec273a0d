# The ECS agent on the GPU instances: register with this cluster, poll for
# and report on tasks. Scoped to the cluster instead of the managed
# AmazonEC2ContainerServiceforEC2Role (which allows any cluster, and ECR and
# CloudWatch Logs on everything: with awsvpc tasks and an execution role the
# agent pulls images and ships logs with the execution role's credentials).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  container_instances_arn = "arn:${data.aws_partition.current.partition}:ecs:${local.region}:${data.aws_caller_identity.current.account_id}:container-instance/${var.cluster_name}/*"
}

data "aws_iam_policy_document" "instance_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "instance" {
  statement {
    sid = "JoinThisCluster"
    actions = [
      "ecs:DeregisterContainerInstance",
      "ecs:RegisterContainerInstance",
      "ecs:Submit*",
      "ecs:UpdateContainerInstancesState",
    ]
    resources = [var.cluster_arn]
  }

  statement {
    sid = "ServeTasksOfThisCluster"
    actions = [
      "ecs:Poll",
      "ecs:StartTelemetrySession",
    ]
    resources = [local.container_instances_arn]
  }

  statement {
    sid = "FindTheEcsEndpoint"
    # DiscoverPollEndpoint has no resource type.
    actions   = ["ecs:DiscoverPollEndpoint"]
    resources = ["*"]
  }
}

resource "aws_iam_role" "instance" {
  name               = "${var.name}-gpu-instance"
  assume_role_policy = data.aws_iam_policy_document.instance_assume.json
}

resource "aws_iam_role_policy" "instance" {
  name   = "ecs-agent-this-cluster"
  role   = aws_iam_role.instance.id
  policy = data.aws_iam_policy_document.instance.json
}

resource "aws_iam_instance_profile" "instance" {
  name = "${var.name}-gpu-instance"
  role = aws_iam_role.instance.name
}
