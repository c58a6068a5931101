//! Limits that count work: batches, aliases, depth, complexity, response size, attempts.
