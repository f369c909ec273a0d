# One secret per value the processes read, each injected by ECS as one
# environment variable (`secrets` with `valueFrom`), plus the master
# credentials in the RDS JSON layout for operators (psql, `panoptes migrate`).
#
# Automatic rotation is off on purpose (see each skip): the values are
# embedded in URLs the processes read only at start, and rotating the JWT
# secret or the credentials key would log everybody out or lose the stored
# camera passwords. Rotate by `terraform apply -replace=...` and a redeploy.

locals {
  postgres_database = "panoptes"
  postgres_username = "panoptes"
}

resource "aws_secretsmanager_secret" "store_url" {
  #checkov:skip=CKV2_AWS_57:Rotating needs the URL rewritten and every process restarted together; done with terraform apply -replace and a redeploy (see README).
  name                    = "${var.name}/store-url"
  description             = "PANOPTES__STORE__URL: postgres:// URL of the Aurora writer with the master credentials, over TLS (sslmode=require)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "store_url" {
  secret_id     = aws_secretsmanager_secret.store_url.id
  secret_string = "postgres://${local.postgres_username}:${random_password.postgres.result}@${aws_rds_cluster.this.endpoint}:${aws_rds_cluster.this.port}/${local.postgres_database}?sslmode=require"
}

resource "aws_secretsmanager_secret" "redis_url" {
  #checkov:skip=CKV2_AWS_57:The AUTH token is rotated with ElastiCache's ROTATE strategy and a redeploy, not by a Lambda (see README).
  name                    = "${var.name}/redis-url"
  description             = "PANOPTES__REDIS__URL: rediss:// URL of the ElastiCache primary with the AUTH token"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "redis_url" {
  secret_id     = aws_secretsmanager_secret.redis_url.id
  secret_string = "rediss://:${random_password.redis_auth_token.result}@${aws_elasticache_replication_group.this.primary_endpoint_address}:${aws_elasticache_replication_group.this.port}"
}

resource "aws_secretsmanager_secret" "jwt_secret" {
  #checkov:skip=CKV2_AWS_57:Rotating the HS256 key invalidates every session token at once; it is rotated deliberately, not on a schedule.
  name                    = "${var.name}/jwt-secret"
  description             = "PANOPTES__AUTH__JWT_SECRET: HS256 key of session tokens and snapshot link signatures"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "jwt_secret" {
  secret_id     = aws_secretsmanager_secret.jwt_secret.id
  secret_string = random_password.jwt_secret.result
}

resource "aws_secretsmanager_secret" "credentials_key" {
  #checkov:skip=CKV2_AWS_57:Camera credentials in PostgreSQL are encrypted with this key; rotating it without re-encrypting them would lose every stored camera password.
  name                    = "${var.name}/credentials-key"
  description             = "PANOPTES__AUTH__CREDENTIALS_KEY: base64 AES-256-GCM key of stored RTSP credentials"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "credentials_key" {
  secret_id     = aws_secretsmanager_secret.credentials_key.id
  secret_string = random_bytes.credentials_key.base64
}

resource "aws_secretsmanager_secret" "postgres_master" {
  #checkov:skip=CKV2_AWS_57:Same password as the store URL secret; the two are rotated together (see README).
  name                    = "${var.name}/postgres-master"
  description             = "Aurora master credentials (RDS JSON layout) for operators and migrations"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "postgres_master" {
  secret_id = aws_secretsmanager_secret.postgres_master.id
  secret_string = jsonencode({
    engine   = "postgres"
    host     = aws_rds_cluster.this.endpoint
    port     = aws_rds_cluster.this.port
    dbname   = local.postgres_database
    username = local.postgres_username
    password = random_password.postgres.result
  })
}
