resource "aws_lb_target_group" "gateway" {
  #checkov:skip=CKV_AWS_378:TLS ends at the ALB; the hop to the gateways stays in private subnets behind security groups and the gateway serves plain HTTP on 8080.
  name                 = "${var.name}-gw"
  port                 = 8080
  protocol             = "HTTP"
  protocol_version     = "HTTP1"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = var.deregistration_delay_seconds

  # An open SSE stream is an outstanding request: least-outstanding-requests
  # sends new streams to the gateways holding the fewest, which evens out
  # long-lived streams across replicas (round robin would not, after a
  # scale-out).
  load_balancing_algorithm_type = "least_outstanding_requests"

  # /readyz checks PostgreSQL, Redis and the event bus within a second; a
  # gateway that cannot reach them is taken out of rotation (and replaced by
  # ECS after unhealthy_threshold failures).
  health_check {
    enabled             = true
    path                = "/readyz"
    port                = "traffic-port"
    protocol            = "HTTP"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}
