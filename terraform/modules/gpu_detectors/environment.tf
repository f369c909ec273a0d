data "aws_region" "current" {}

# The detect role's configuration contract, spelled out name by name (a test
# parses these maps). The model and ONNX Runtime are baked into the GPU
# image at these paths.
locals {
  region = data.aws_region.current.region

  detect_environment = {
    PANOPTES__BLOBS__BACKEND               = "s3"
    PANOPTES__BLOBS__S3_BUCKET             = var.snapshot_bucket_name
    PANOPTES__BLOBS__S3_REGION             = local.region
    PANOPTES__LOG__FORMAT                  = "json"
    PANOPTES__DATA__DIR                    = "/var/lib/panoptes"
    PANOPTES__WORKER__METRICS_LISTEN       = "0.0.0.0:9464"
    PANOPTES__DETECTOR__EXECUTION_PROVIDER = "cuda"
    PANOPTES__DETECTOR__MODEL_PATH         = "/opt/panoptes/models/nanodet-m-416.onnx"
    PANOPTES__DETECTOR__ORT_LIBRARY        = "/opt/panoptes/lib/libonnxruntime.so.1.31.1"
    PANOPTES__DETECTOR__CONCURRENCY        = tostring(var.detector_concurrency)
    PANOPTES__DETECTOR__BATCH_SIZE         = tostring(var.detector_batch_size)
  }

  detect_secrets = {
    PANOPTES__STORE__URL            = var.secret_arns.store_url
    PANOPTES__REDIS__URL            = var.secret_arns.redis_url
    PANOPTES__AUTH__JWT_SECRET      = var.secret_arns.jwt_secret
    PANOPTES__AUTH__CREDENTIALS_KEY = var.secret_arns.credentials_key
  }
}
