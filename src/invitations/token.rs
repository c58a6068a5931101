//! Invitation tokens: 256 random bits behind a recognizable prefix, stored only as SHA-256.

use crate::error::Result;
use crate::identity::secrets;

/// What every invitation token starts with, so leaked ones are recognizable (secret scanners).
pub const PREFIX: &str = "pci_";

/// A fresh token and the hash to store.
pub fn mint() -> Result<(String, Vec<u8>)> {
    secrets::mint_token(PREFIX)
}

/// The stored hash of a presented token, or `None` when it cannot be one of ours.
pub fn hash_of(presented: &str) -> Option<Vec<u8>> {
    secrets::token_hash(PREFIX, presented)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_are_recognized_and_junk_is_not() {
        let (token, hash) = mint().unwrap();
        assert_eq!(hash_of(&token), Some(hash));
        assert_eq!(hash_of("pci_short"), None);
        assert_eq!(hash_of(&token.replace(PREFIX, "pck_")), None);
    }
}
