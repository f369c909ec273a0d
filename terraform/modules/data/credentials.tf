# Generated credentials. They live in the Terraform state as well as in
# Secrets Manager: keep the state in the encrypted, access-restricted S3
# backend (see environments/example/backend.tf.example).
#
# Alphanumeric only: the database password and the Redis token are embedded
# in URLs (postgres://user:pass@..., rediss://:token@...) and ElastiCache
# refuses some punctuation in AUTH tokens, so no escaping is ever needed.

resource "random_password" "postgres" {
  length  = 40
  special = false
}

resource "random_password" "redis_auth_token" {
  length  = 64
  special = false
}

# auth.jwt_secret: HS256 key for session tokens, >= 32 bytes.
resource "random_password" "jwt_secret" {
  length  = 64
  special = false
}

# auth.credentials_key: base64 of 32 random bytes (AES-256-GCM key for the
# RTSP credentials stored in PostgreSQL). Replacing it makes every stored
# camera password unreadable: never change its arguments on a live database.
resource "random_bytes" "credentials_key" {
  length = 32
}
