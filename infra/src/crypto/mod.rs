//! Cryptography adapters.

mod cipher;
mod password;

pub use cipher::AesGcmCipher;
pub use password::{hash_password, verify_password};
