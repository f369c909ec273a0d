data "aws_region" "current" {}

# Each worker role's configuration contract, spelled out name by name (a
# test parses these maps): plain settings in `environment`, secrets as
# Secrets Manager ARNs that ECS resolves into the variables (`secrets`).
# Deliberately not merged from a shared map, so every role reads complete.
locals {
  region = data.aws_region.current.region

  worker_environment = {
    ingest = {
      PANOPTES__BLOBS__BACKEND         = "s3"
      PANOPTES__BLOBS__S3_BUCKET       = var.snapshot_bucket_name
      PANOPTES__BLOBS__S3_REGION       = local.region
      PANOPTES__LOG__FORMAT            = "json"
      PANOPTES__DATA__DIR              = "/var/lib/panoptes"
      PANOPTES__WORKER__METRICS_LISTEN = "0.0.0.0:9464"
    }
    analytics = {
      PANOPTES__BLOBS__BACKEND         = "s3"
      PANOPTES__BLOBS__S3_BUCKET       = var.snapshot_bucket_name
      PANOPTES__BLOBS__S3_REGION       = local.region
      PANOPTES__LOG__FORMAT            = "json"
      PANOPTES__DATA__DIR              = "/var/lib/panoptes"
      PANOPTES__WORKER__METRICS_LISTEN = "0.0.0.0:9464"
    }
    notify = {
      PANOPTES__BLOBS__BACKEND         = "s3"
      PANOPTES__BLOBS__S3_BUCKET       = var.snapshot_bucket_name
      PANOPTES__BLOBS__S3_REGION       = local.region
      PANOPTES__LOG__FORMAT            = "json"
      PANOPTES__DATA__DIR              = "/var/lib/panoptes"
      PANOPTES__WORKER__METRICS_LISTEN = "0.0.0.0:9464"
    }
    schedule = {
      PANOPTES__BLOBS__BACKEND         = "s3"
      PANOPTES__BLOBS__S3_BUCKET       = var.snapshot_bucket_name
      PANOPTES__BLOBS__S3_REGION       = local.region
      PANOPTES__LOG__FORMAT            = "json"
      PANOPTES__DATA__DIR              = "/var/lib/panoptes"
      PANOPTES__WORKER__METRICS_LISTEN = "0.0.0.0:9464"
    }
  }

  worker_secrets = {
    ingest = {
      PANOPTES__STORE__URL            = var.secret_arns.store_url
      PANOPTES__REDIS__URL            = var.secret_arns.redis_url
      PANOPTES__AUTH__JWT_SECRET      = var.secret_arns.jwt_secret
      PANOPTES__AUTH__CREDENTIALS_KEY = var.secret_arns.credentials_key
    }
    analytics = {
      PANOPTES__STORE__URL            = var.secret_arns.store_url
      PANOPTES__REDIS__URL            = var.secret_arns.redis_url
      PANOPTES__AUTH__JWT_SECRET      = var.secret_arns.jwt_secret
      PANOPTES__AUTH__CREDENTIALS_KEY = var.secret_arns.credentials_key
    }
    notify = {
      PANOPTES__STORE__URL            = var.secret_arns.store_url
      PANOPTES__REDIS__URL            = var.secret_arns.redis_url
      PANOPTES__AUTH__JWT_SECRET      = var.secret_arns.jwt_secret
      PANOPTES__AUTH__CREDENTIALS_KEY = var.secret_arns.credentials_key
    }
    schedule = {
      PANOPTES__STORE__URL            = var.secret_arns.store_url
      PANOPTES__REDIS__URL            = var.secret_arns.redis_url
      PANOPTES__AUTH__JWT_SECRET      = var.secret_arns.jwt_secret
      PANOPTES__AUTH__CREDENTIALS_KEY = var.secret_arns.credentials_key
    }
  }
}
