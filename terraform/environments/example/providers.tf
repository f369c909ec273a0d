provider "aws" {
  region = var.region

  # Every taggable resource carries these (cost allocation, ownership).
  default_tags {
    tags = merge(var.tags, {
      Project     = "panoptes"
      Environment = var.environment
      ManagedBy   = "terraform"
    })
  }
}
