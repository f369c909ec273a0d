# One group per role, no ingress at all: /metrics on 9464 is read by the
# schedule task's own sidecar over loopback. Egress is what each role needs.

locals {
  roles = toset(["ingest", "analytics", "notify", "schedule"])

  # Extra TCP ports a role may open to the internet, besides 443.
  role_egress_ports = {
    ingest    = var.camera_egress_ports
    analytics = []
    notify    = var.webhook_egress_ports
    schedule  = []
  }

  role_egress_rules = merge([
    for role, ports in local.role_egress_ports : {
      for p in ports : "${role}-${p}" => { role = role, port = p }
    }
  ]...)
}

resource "aws_security_group" "role" {
  #checkov:skip=CKV2_AWS_5:Each group is attached to its role's ECS service (services.tf, security_groups = [aws_security_group.role[each.key].id, ...]); checkov's graph does not resolve for_each keys across resources.
  for_each = local.roles

  name        = "${var.name}-${each.key}"
  description = "Worker role ${each.key}: no ingress; HTTPS and role-specific ports out"
  vpc_id      = var.vpc_id

  tags = {
    Name = "${var.name}-${each.key}"
  }
}

# ECR, CloudWatch Logs, Secrets Manager, SSM (Fargate resolves them through
# the task's ENI), S3 presigning needs nothing; plus rtsps:// cameras on 443
# for ingest and https:// webhooks for notify.
resource "aws_vpc_security_group_egress_rule" "https" {
  for_each = local.roles

  security_group_id = aws_security_group.role[each.key].id
  description       = "HTTPS to AWS APIs (through NAT)${each.key == "ingest" ? ", cameras" : each.key == "notify" ? ", customer webhooks" : ""}"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "role_ports" {
  for_each = local.role_egress_rules

  security_group_id = aws_security_group.role[each.value.role].id
  description       = each.value.role == "ingest" ? "RTSP/RTSPS cameras on port ${each.value.port}" : "Customer webhooks on port ${each.value.port}"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = "0.0.0.0/0"
}
