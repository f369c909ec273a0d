data "aws_region" "current" {}

# The gateway's configuration contract, spelled out name by name (a test
# parses these maps): plain settings in `environment`, everything secret as
# a Secrets Manager ARN that ECS resolves into the variable (`secrets`).
locals {
  gateway_environment = {
    PANOPTES__BLOBS__BACKEND          = "s3"
    PANOPTES__BLOBS__S3_BUCKET        = var.snapshot_bucket_name
    PANOPTES__BLOBS__S3_REGION        = data.aws_region.current.region
    PANOPTES__LOG__FORMAT             = "json"
    PANOPTES__DATA__DIR               = "/var/lib/panoptes"
    PANOPTES__SERVER__LISTEN          = "0.0.0.0:8080"
    PANOPTES__SERVER__TRUSTED_PROXIES = var.vpc_cidr_block
  }

  gateway_secrets = {
    PANOPTES__STORE__URL            = var.secret_arns.store_url
    PANOPTES__REDIS__URL            = var.secret_arns.redis_url
    PANOPTES__AUTH__JWT_SECRET      = var.secret_arns.jwt_secret
    PANOPTES__AUTH__CREDENTIALS_KEY = var.secret_arns.credentials_key
  }
}
