locals {
  postgres_major = split(".", var.postgres_engine_version)[0]
}

resource "aws_db_subnet_group" "this" {
  name        = var.name
  description = "${var.name}: isolated database subnets"
  subnet_ids  = var.database_subnet_ids
}

resource "aws_rds_cluster_parameter_group" "this" {
  name        = "${var.name}-aurora-postgresql${local.postgres_major}"
  family      = "aurora-postgresql${local.postgres_major}"
  description = "${var.name}: slow-query and DDL logging, TLS policy"

  # Statements slower than a second, and every schema change (migrations run
  # at start-up), land in the exported postgresql log.
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  parameter {
    name  = "log_lock_waits"
    value = "1"
  }

  # PostgreSQL refuses clients without TLS; the store URL asks for it
  # (sslmode=require). See postgres_force_tls.
  parameter {
    name  = "rds.force_ssl"
    value = var.postgres_force_tls ? "1" : "0"
  }
}

# Created before the cluster so RDS exports into a group with retention and
# the environment's key instead of creating an unencrypted, never-expiring one.
resource "aws_cloudwatch_log_group" "postgres" {
  name              = "/aws/rds/cluster/${var.name}/postgresql"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_rds_cluster" "this" {
  #checkov:skip=CKV2_AWS_8:Aurora's continuous backups (backup_retention_period, point-in-time restore) and the final snapshot cover recovery; an AWS Backup plan is an organisation-level choice outside this module.
  cluster_identifier = var.name
  engine             = "aurora-postgresql"
  engine_mode        = "provisioned"
  engine_version     = var.postgres_engine_version
  database_name      = local.postgres_database
  master_username    = local.postgres_username
  master_password    = random_password.postgres.result
  port               = 5432

  db_subnet_group_name            = aws_db_subnet_group.this.name
  vpc_security_group_ids          = [aws_security_group.postgres.id]
  db_cluster_parameter_group_name = aws_rds_cluster_parameter_group.this.name
  network_type                    = "IPV4"

  storage_encrypted = true
  kms_key_id        = var.kms_key_arn

  # Password auth is what the processes use (store.url); IAM auth is enabled
  # so operators can connect with short-lived tokens instead of the master
  # password (rds-db:connect is granted to nobody by this configuration).
  iam_database_authentication_enabled = true

  serverlessv2_scaling_configuration {
    min_capacity             = var.postgres_min_acu
    max_capacity             = var.postgres_max_acu
    seconds_until_auto_pause = var.postgres_min_acu == 0 ? var.postgres_seconds_until_auto_pause : null
  }

  backup_retention_period      = var.postgres_backup_retention_days
  preferred_backup_window      = "02:00-03:00"
  preferred_maintenance_window = "sun:03:30-sun:04:30"
  copy_tags_to_snapshot        = true
  deletion_protection          = var.deletion_protection
  skip_final_snapshot          = false
  final_snapshot_identifier    = "${var.name}-final"
  allow_major_version_upgrade  = false
  apply_immediately            = false

  enabled_cloudwatch_logs_exports = ["postgresql"]

  depends_on = [aws_cloudwatch_log_group.postgres]
}

data "aws_iam_policy_document" "rds_monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name               = "${var.name}-rds-enhanced-monitoring"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring_assume.json
}

data "aws_partition" "current" {}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

# The first instance is the writer; the others are failover targets in other
# AZs (promotion tier 1). The processes use the cluster (writer) endpoint only.
resource "aws_rds_cluster_instance" "this" {
  count = var.postgres_instance_count

  identifier           = "${var.name}-${count.index + 1}"
  cluster_identifier   = aws_rds_cluster.this.id
  engine               = aws_rds_cluster.this.engine
  engine_version       = aws_rds_cluster.this.engine_version
  instance_class       = "db.serverless"
  db_subnet_group_name = aws_db_subnet_group.this.name
  publicly_accessible  = false
  promotion_tier       = count.index == 0 ? 0 : 1
  ca_cert_identifier   = "rds-ca-rsa2048-g1"

  auto_minor_version_upgrade = true
  apply_immediately          = false

  monitoring_interval = 60
  monitoring_role_arn = aws_iam_role.rds_monitoring.arn

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = var.kms_key_arn
  performance_insights_retention_period = 7

  depends_on = [aws_iam_role_policy_attachment.rds_monitoring]
}
