//! Argon2id password hashing, run on the blocking pool (it is deliberately slow and
//! takes about 19 MiB per hash). At most [`MAX_CONCURRENT`] run at once, so a flood of
//! sign-ins queues instead of exhausting memory or the blocking pool.

use std::sync::LazyLock;

use argon2::password_hash::Error as HashError;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

/// Hashes computed at once across the process.
pub const MAX_CONCURRENT: usize = 4;

static PERMITS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(MAX_CONCURRENT));

/// Hashes a password into a PHC string with a random salt.
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    let _permit = PERMITS.acquire().await?;
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|err| anyhow::anyhow!("hashing a password: {err}"))
    })
    .await?
}

/// Checks a password against a stored PHC string; `false` for a wrong password.
pub async fn verify_password(password: String, phc: String) -> anyhow::Result<bool> {
    let _permit = PERMITS.acquire().await?;
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&phc)
            .map_err(|err| anyhow::anyhow!("stored password hash is malformed: {err}"))?;
        match Argon2::default().verify_password(password.as_bytes(), &parsed) {
            Ok(()) => Ok(true),
            Err(HashError::PasswordInvalid) => Ok(false),
            Err(err) => Err(anyhow::anyhow!("verifying a password: {err}")),
        }
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_only_the_right_password() {
        let phc = hash_password("correcto-caballo".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(
            verify_password("correcto-caballo".into(), phc.clone())
                .await
                .unwrap()
        );
        assert!(!verify_password("incorrecto".into(), phc).await.unwrap());
    }
}
