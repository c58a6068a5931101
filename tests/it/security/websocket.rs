//! WebSockets: every message authenticated as of now, protocol close codes, caps.
