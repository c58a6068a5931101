//! Role grants bounded by the granter's own power: no escalation inside an organization.
