//! Turns stored roles, policies and links into one Cedar policy set, remembering where each
//! policy came from so decisions can be explained.

use std::collections::HashMap;

use cedar_policy::{EntityUid, Policy, PolicyId, PolicySet, SlotId, Template};

use super::actions::Action;
use super::entities::Types;
use crate::db::Id;
use crate::db::models::{PolicyRow, RolePolicyRow, RoleRow};
use crate::error::{Error, Result};

/// Where a compiled policy came from.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The stored policy (or, for compiled roles, the role) it stems from; `None` for built-ins.
    pub id: Option<Id>,
    pub name: String,
}

/// The compiled policies and their origins.
pub struct Compiled {
    pub policies: PolicySet,
    pub origins: HashMap<PolicyId, Origin>,
}

/// Built-in policies that no role expresses.
const SELF_SERVICE: &str = "builtin:self-service";
const AUTHORIZE_SELF: &str = "builtin:authorize-self";

pub fn compile(
    types: &Types,
    roles: &[RoleRow],
    policies: &[PolicyRow],
    links: &[RolePolicyRow],
) -> Result<Compiled> {
    let mut set = PolicySet::new();
    let mut origins = HashMap::new();
    let mut add_static = |set: &mut PolicySet, id: String, source: &str, origin: Origin| -> Result<()> {
        let policy_id = PolicyId::new(&id);
        let policy = Policy::parse(Some(policy_id.clone()), source)
            .map_err(|e| Error::internal(anyhow::anyhow!("compiling {id}: {e}")))?;
        set.add(policy)
            .map_err(|e| Error::internal(anyhow::anyhow!("adding {id}: {e}")))?;
        origins.insert(policy_id, origin);
        Ok(())
    };

    let self_service = format!(
        "permit (principal, action in [{}], resource) when {{ resource == principal }};",
        action_list(&Action::SELF_SERVICE)
    );
    let builtin = |name: &str| Origin {
        id: None,
        name: name.to_owned(),
    };
    add_static(
        &mut set,
        SELF_SERVICE.to_owned(),
        &self_service,
        builtin("self-service (built-in)"),
    )?;
    add_static(
        &mut set,
        AUTHORIZE_SELF.to_owned(),
        r#"permit (principal, action == Portcullis::Action::"authorize.self", resource);"#,
        builtin("authorize for yourself (built-in)"),
    )?;

    for role in roles {
        let Some(source) = role_policy(types, role) else {
            continue;
        };
        let origin = Origin {
            id: Some(role.id),
            name: format!("role {}", role.key),
        };
        add_static(&mut set, format!("role:{}", role.id), &source, origin)?;
    }

    let mut templates = HashMap::new();
    for policy in policies.iter().filter(|p| p.enabled) {
        let id = format!("policy:{}", policy.id);
        let origin = Origin {
            id: Some(policy.id),
            name: policy.name.clone(),
        };
        if policy.kind == "template" {
            templates.insert(policy.id, (policy, origin));
        } else if let Err(error) = add_static(&mut set, id, &policy.source, origin) {
            // Validated when written; a row that no longer compiles must not stop the engine.
            tracing::error!(policy = %policy.id, error = ?error, "stored policy not compiled");
        }
    }

    // Links become static policies with the slot filled in: every policy in the set is then
    // static, which lets the slicer hand any subset of them to Cedar.
    for link in links {
        let Some((template, origin)) = templates.get(&link.policy_id) else {
            continue; // disabled or static policy: nothing to link
        };
        let link_id = PolicyId::new(format!("link:{}:{}", link.role_id, link.policy_id));
        match link_static(&template.source, link_id.clone(), &types.role(link.role_id)) {
            Ok(policy) => match set.add(policy) {
                Ok(()) => {
                    origins.insert(link_id, origin.clone());
                }
                Err(error) => tracing::error!(%error, "template link not compiled"),
            },
            Err(error) => tracing::error!(error = ?error, "template link not compiled"),
        }
    }
    Ok(Compiled {
        policies: set,
        origins,
    })
}

/// The template with its `?principal` slot replaced by `principal`, as a static policy: Cedar
/// links it (so every template shape Cedar accepts links as Cedar links it), then the linked
/// policy is re-read from its JSON form, which is static.
pub(crate) fn link_static(source: &str, id: PolicyId, principal: &EntityUid) -> Result<Policy> {
    let failed = |e: &dyn std::fmt::Display| Error::internal(anyhow::anyhow!("linking {id}: {e}"));
    let template_id = PolicyId::new("template");
    let template = Template::parse(Some(template_id.clone()), source).map_err(|e| failed(&e))?;
    let mut set = PolicySet::new();
    set.add_template(template).map_err(|e| failed(&e))?;
    let values = HashMap::from([(SlotId::principal(), principal.clone())]);
    set.link(template_id, id.clone(), values)
        .map_err(|e| failed(&e))?;
    let linked = set
        .policy(&id)
        .ok_or_else(|| failed(&"the linked policy is missing"))?;
    let json = linked.to_json().map_err(|e| failed(&e))?;
    Policy::from_json(Some(id.clone()), json).map_err(|e| failed(&e))
}

/// `permit (principal in Role::"…", action in [...], resource);` for a role's permissions.
fn role_policy(types: &Types, role: &RoleRow) -> Option<String> {
    let permissions: Vec<String> = serde_json::from_str(&role.permissions).unwrap_or_default();
    if permissions.is_empty() {
        return None;
    }
    let principal = types.role(role.id);
    // `*` is every gateway action — not integrators' actions, which only their own policies grant.
    let actions: Vec<Action> = if permissions.iter().any(|p| p == "*") {
        Action::ALL.to_vec()
    } else {
        permissions.iter().filter_map(|p| Action::parse(p)).collect()
    };
    if actions.is_empty() {
        return None;
    }
    Some(format!(
        "permit (principal in {principal}, action in [{}], resource);",
        action_list(&actions)
    ))
}

fn action_list(actions: &[Action]) -> String {
    actions
        .iter()
        .map(|a| format!("Portcullis::Action::\"{}\"", a.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shape of `?principal` Cedar allows links — `is … in ?principal` too, whose slot sits
    /// under `in` — and the linked policy names the role where the slot was.
    #[test]
    fn every_principal_slot_shape_links() {
        let role: EntityUid = r#"Portcullis::Role::"r1""#.parse().unwrap();
        for (template, linked) in [
            (
                "permit (principal == ?principal, action, resource);",
                r#"principal == Portcullis::Role::"r1""#,
            ),
            (
                "permit (principal in ?principal, action, resource);",
                r#"principal in Portcullis::Role::"r1""#,
            ),
            (
                "forbid (principal is Portcullis::User in ?principal, action, resource) when { context.mfa };",
                r#"principal is Portcullis::User in Portcullis::Role::"r1""#,
            ),
        ] {
            let policy = link_static(template, PolicyId::new("link"), &role).expect(template);
            assert!(policy.is_static());
            assert!(policy.to_string().contains(linked), "{policy}");
        }
    }
}
