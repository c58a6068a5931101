//! Relations: every object reached through another is read-checked like a root query.
