# Who may reach the database and the cache: anything carrying the `clients`
# group. Every Panoptes task gets it besides its own group, so this module
# needs to know nothing about the services and no rule names a CIDR.

resource "aws_security_group" "clients" {
  #checkov:skip=CKV2_AWS_5:Attached to every ECS service by the gateway, workers and gpu_detectors modules (network_configuration.security_groups), outside this module where checkov's graph does not follow it.
  name        = "${var.name}-data-clients"
  description = "Panoptes processes: may open PostgreSQL and Redis connections"
  vpc_id      = var.vpc_id

  tags = {
    Name = "${var.name}-data-clients"
  }
}

resource "aws_vpc_security_group_egress_rule" "clients_postgres" {
  security_group_id            = aws_security_group.clients.id
  description                  = "PostgreSQL to Aurora"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.postgres.id
}

resource "aws_vpc_security_group_egress_rule" "clients_redis" {
  security_group_id            = aws_security_group.clients.id
  description                  = "Redis (TLS) to ElastiCache"
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  referenced_security_group_id = aws_security_group.redis.id
}

resource "aws_security_group" "postgres" {
  name        = "${var.name}-postgres"
  description = "Aurora PostgreSQL: PostgreSQL from Panoptes processes only"
  vpc_id      = var.vpc_id

  tags = {
    Name = "${var.name}-postgres"
  }
}

resource "aws_vpc_security_group_ingress_rule" "postgres_from_clients" {
  security_group_id            = aws_security_group.postgres.id
  description                  = "PostgreSQL from Panoptes processes"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.clients.id
}

resource "aws_security_group" "redis" {
  name        = "${var.name}-redis"
  description = "ElastiCache Redis: TLS Redis from Panoptes processes only"
  vpc_id      = var.vpc_id

  tags = {
    Name = "${var.name}-redis"
  }
}

resource "aws_vpc_security_group_ingress_rule" "redis_from_clients" {
  security_group_id            = aws_security_group.redis.id
  description                  = "Redis (TLS) from Panoptes processes"
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  referenced_security_group_id = aws_security_group.clients.id
}
