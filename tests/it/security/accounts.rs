//! Account changes: email and password changes, disabling, sessions ending with them.
