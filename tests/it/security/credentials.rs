//! Credentials: tampered and forged tokens, refresh reuse, revoked API keys, export links.
