//! Hostile input: injection strings in every filter, oversized fields, look-alike slugs.
