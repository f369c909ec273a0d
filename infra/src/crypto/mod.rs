//! Cryptography adapters.

mod cipher;
mod password;

pub use cipher::AesGcmCipher;
pub use password::{PasswordHasher, hash_password, verify_password};
