resource "aws_lb" "this" {
  name               = "${var.name}-api"
  load_balancer_type = "application"
  internal           = false
  subnets            = var.public_subnet_ids
  security_groups    = [aws_security_group.alb.id]
  ip_address_type    = "ipv4"

  # SSE: a stream is silent for up to 15 s between keep-alive comments; the
  # ALB closes connections idle for longer than idle_timeout.
  idle_timeout = var.idle_timeout_seconds

  # HTTP/2 to clients (many SSE streams share one browser connection); the
  # ALB speaks HTTP/1.1 to the gateways.
  enable_http2 = true

  drop_invalid_header_fields = true
  desync_mitigation_mode     = "defensive"
  xff_header_processing_mode = "append"
  enable_deletion_protection = var.deletion_protection

  access_logs {
    bucket  = var.access_logs_bucket
    prefix  = "alb"
    enabled = true
  }
}
