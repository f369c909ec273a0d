output "client_security_group_id" {
  description = "Security group every Panoptes task must carry to reach PostgreSQL and Redis."
  value       = aws_security_group.clients.id
}

output "secret_arns" {
  description = "ARNs of the secrets each process reads, by the value they hold."
  value = {
    store_url       = aws_secretsmanager_secret.store_url.arn
    redis_url       = aws_secretsmanager_secret.redis_url.arn
    jwt_secret      = aws_secretsmanager_secret.jwt_secret.arn
    credentials_key = aws_secretsmanager_secret.credentials_key.arn
  }
}

output "postgres_master_secret_arn" {
  description = "ARN of the Aurora master credentials secret (RDS JSON layout), for operators."
  value       = aws_secretsmanager_secret.postgres_master.arn
}

output "snapshot_bucket_name" {
  description = "Name of the snapshot bucket (PANOPTES__BLOBS__S3_BUCKET)."
  value       = aws_s3_bucket.snapshots.id
}

output "snapshot_bucket_arn" {
  description = "ARN of the snapshot bucket."
  value       = aws_s3_bucket.snapshots.arn
}

output "postgres_cluster_identifier" {
  description = "Aurora cluster identifier (dashboards, alarms)."
  value       = aws_rds_cluster.this.cluster_identifier
}

output "postgres_endpoint" {
  description = "Writer endpoint of the Aurora cluster."
  value       = aws_rds_cluster.this.endpoint
}

output "redis_replication_group_id" {
  description = "ElastiCache replication group id (dashboards, alarms)."
  value       = aws_elasticache_replication_group.this.id
}

output "redis_primary_endpoint" {
  description = "Primary endpoint of the Redis replication group."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}
