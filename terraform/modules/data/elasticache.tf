resource "aws_elasticache_subnet_group" "this" {
  name        = var.name
  description = "${var.name}: isolated database subnets"
  subnet_ids  = var.database_subnet_ids
}

# The frame queue (streams), leases, SSE slots and rate limits all live in
# Redis. Evicting any of them silently would lose jobs or hand one camera to
# two ingest nodes, so memory pressure must fail writes instead: noeviction.
resource "aws_elasticache_parameter_group" "this" {
  name        = "${var.name}-redis${split(".", var.redis_engine_version)[0]}"
  family      = "redis${split(".", var.redis_engine_version)[0]}"
  description = "${var.name}: never evict (queue, leases and slots are state)"

  parameter {
    name  = "maxmemory-policy"
    value = "noeviction"
  }
}

resource "aws_cloudwatch_log_group" "redis_slow_log" {
  name              = "${var.log_group_prefix}/redis/slow-log"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_cloudwatch_log_group" "redis_engine_log" {
  name              = "${var.log_group_prefix}/redis/engine-log"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id = var.name
  description          = "${var.name}: frame queue, event bus, leases, SSE slots, rate limits"
  engine               = "redis"
  engine_version       = var.redis_engine_version
  node_type            = var.redis_node_type
  num_cache_clusters   = var.redis_node_count
  port                 = 6379
  parameter_group_name = aws_elasticache_parameter_group.this.name
  subnet_group_name    = aws_elasticache_subnet_group.this.name
  security_group_ids   = [aws_security_group.redis.id]

  # A replica in another AZ takes over within a minute if the primary or its
  # AZ fails; the queue, leases and SSE slots survive.
  automatic_failover_enabled = true
  multi_az_enabled           = true

  # TLS in transit with an AUTH token (rediss://:<token>@host:6379), and
  # at rest with the environment's key.
  transit_encryption_enabled = true
  auth_token                 = random_password.redis_auth_token.result
  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn

  snapshot_retention_limit   = var.redis_snapshot_retention_days
  snapshot_window            = "01:00-02:00"
  maintenance_window         = "sun:04:30-sun:05:30"
  auto_minor_version_upgrade = true
  apply_immediately          = false

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.redis_slow_log.name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "slow-log"
  }

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.redis_engine_log.name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "engine-log"
  }
}
