# The instances only run the ECS agent (and the awsvpc tasks' image pulls
# and log shipping): HTTPS out, nothing in.
resource "aws_security_group" "instance" {
  name        = "${var.name}-gpu-instances"
  description = "GPU container instances: no ingress; HTTPS to ECS, ECR and CloudWatch"
  vpc_id      = var.vpc_id

  tags = {
    Name = "${var.name}-gpu-instances"
  }
}

resource "aws_vpc_security_group_egress_rule" "instance_https" {
  security_group_id = aws_security_group.instance.id
  description       = "HTTPS to the ECS, ECR and CloudWatch Logs APIs (through NAT)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

# The detector tasks (awsvpc: an ENI and a group of their own): snapshots to
# S3, PostgreSQL and Redis through the data clients group, nothing in.
resource "aws_security_group" "task" {
  name        = "${var.name}-detect"
  description = "Detector tasks: no ingress; HTTPS out (S3 snapshots)"
  vpc_id      = var.vpc_id

  tags = {
    Name = "${var.name}-detect"
  }
}

resource "aws_vpc_security_group_egress_rule" "task_https" {
  security_group_id = aws_security_group.task.id
  description       = "HTTPS to S3 (gateway endpoint) and AWS APIs"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}
