//! What the importer asks of vpnaas for one Neutron object: the POST attributes it maps
//! to (by vpnaas's attribute map, so an attribute vpnaas adds is carried without a change
//! here) and, when vpnaas already holds the id, how the two differ. Pure functions: no
//! I/O, no secrets in what they return but the attributes themselves.

use serde_json::{Map, Value};
use vpnaas_model::attr::Post;
use vpnaas_model::{Kind, attributes};

/// The attributes of a Neutron object that vpnaas's POST takes: everything its map lets
/// an administrator give, id and project included. Nulls are left out (Neutron shows
/// "not set" as null, which a POST says by leaving the attribute out); `tenant_id` is
/// carried by `project_id`. Computed attributes (status, external addresses) are
/// vpnaas's own and not carried.
pub fn desired(kind: Kind, neutron: &Value) -> Map<String, Value> {
    attributes(kind)
        .iter()
        .filter(|attr| !matches!(attr.post, Post::Forbidden) && attr.name != "tenant_id")
        .filter_map(|attr| match neutron.get(attr.name) {
            None | Some(Value::Null) => None,
            Some(value) => Some((attr.name.to_string(), value.clone())),
        })
        .collect()
}

/// How an object vpnaas holds compares with what Neutron has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    /// Every attribute is the same.
    Same,
    /// Some differ.
    Differs {
        /// Neutron's values of the differing attributes a PUT may change.
        updatable: Map<String, Value>,
        /// The names of the differing attributes no PUT may change (e.g. `project_id`,
        /// `router_id`).
        fixed: Vec<String>,
    },
}

/// Compares the attributes Neutron has (`desired`) with the object vpnaas holds.
pub fn compare(kind: Kind, desired: &Map<String, Value>, held: &Value) -> Comparison {
    let mut updatable = Map::new();
    let mut fixed = Vec::new();
    for (name, wanted) in desired {
        if same(wanted, held.get(name).unwrap_or(&Value::Null)) {
            continue;
        }
        let may_put = attributes(kind)
            .iter()
            .any(|attr| attr.name == name && attr.put);
        if may_put {
            updatable.insert(name.clone(), wanted.clone());
        } else {
            fixed.push(name.clone());
        }
    }
    fixed.sort();
    if updatable.is_empty() && fixed.is_empty() {
        Comparison::Same
    } else {
        Comparison::Differs { updatable, fixed }
    }
}

/// Equal values; an empty list and "not set" are the same (Neutron shows `peer_cidrs`
/// of a connection with endpoint groups as `[]`, and so may vpnaas, or leave it null).
fn same(wanted: &Value, held: &Value) -> bool {
    let empty = |v: &Value| v.is_null() || v.as_array().is_some_and(Vec::is_empty);
    wanted == held || (empty(wanted) && empty(held))
}

/// The ids of other objects an object refers to (its policies, service, endpoint
/// groups), with their kinds: when one of those was refused, the refusal of this one is
/// explained by it.
pub fn references(kind: Kind, neutron: &Value) -> Vec<(Kind, String)> {
    let refs: &[(&str, Kind)] = match kind {
        Kind::SiteConnection => &[
            ("vpnservice_id", Kind::VpnService),
            ("ikepolicy_id", Kind::IkePolicy),
            ("ipsecpolicy_id", Kind::IpsecPolicy),
            ("local_ep_group_id", Kind::EndpointGroup),
            ("peer_ep_group_id", Kind::EndpointGroup),
        ],
        _ => &[],
    };
    refs.iter()
        .filter_map(|(key, target)| Some((*target, neutron.get(*key)?.as_str()?.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A connection as neutron-vpnaas 29 shows it to an administrator.
    fn neutron_connection() -> Value {
        json!({
            "id": "2a2b7f1e-0c55-4ad8-9b0e-6a0f2f8d3c01", "tenant_id": "p1", "project_id": "p1",
            "name": "to-site-b", "description": "", "peer_address": "198.51.100.7",
            "peer_id": "198.51.100.7", "local_id": "", "route_mode": "static", "mtu": 1400,
            "auth_mode": "psk", "psk": "s3cret", "initiator": "bi-directional",
            "dpd": {"action": "hold", "interval": 30, "timeout": 120}, "admin_state_up": true,
            "status": "PENDING_CREATE", "peer_cidrs": [],
            "vpnservice_id": "5c7b3d6e-1f4a-4b5c-8d9e-0a1b2c3d4e5f",
            "ikepolicy_id": "6d8c4e7f-2a5b-4c6d-9e0f-1b2c3d4e5f60",
            "ipsecpolicy_id": "7e9d5f80-3b6c-4d7e-8f10-2c3d4e5f6071",
            "local_ep_group_id": "8fa06091-4c7d-4e8f-9012-3d4e5f607182",
            "peer_ep_group_id": "90b17102-5d8e-4f90-a123-4e5f60718293",
        })
    }

    #[test]
    fn a_connection_maps_to_what_an_administrators_post_may_carry() {
        let mapped = desired(Kind::SiteConnection, &neutron_connection());
        for carried in [
            "id",
            "project_id",
            "name",
            "description",
            "peer_address",
            "peer_id",
            "local_id",
            "mtu",
            "psk",
            "auth_mode",
            "initiator",
            "dpd",
            "admin_state_up",
            "peer_cidrs",
            "vpnservice_id",
            "ikepolicy_id",
            "ipsecpolicy_id",
            "local_ep_group_id",
            "peer_ep_group_id",
        ] {
            assert_eq!(
                mapped.get(carried),
                neutron_connection().get(carried),
                "{carried}"
            );
        }
        for computed in ["tenant_id", "status", "route_mode"] {
            assert!(!mapped.contains_key(computed), "{computed} is vpnaas's own");
        }
    }

    #[test]
    fn nulls_are_left_to_the_post_defaults() {
        let service = json!({
            "id": "5c7b3d6e-1f4a-4b5c-8d9e-0a1b2c3d4e5f", "project_id": "p1", "name": "vpn",
            "router_id": "a1b2c3d4-0000-4000-8000-000000000001", "subnet_id": null,
            "flavor_id": null, "admin_state_up": true, "external_v4_ip": "203.0.113.5",
            "external_v6_ip": null, "status": "ACTIVE",
        });
        let mapped = desired(Kind::VpnService, &service);
        assert!(!mapped.contains_key("subnet_id"));
        assert!(!mapped.contains_key("flavor_id"));
        assert!(
            !mapped.contains_key("external_v4_ip"),
            "computed from the router"
        );
        assert_eq!(mapped["router_id"], service["router_id"]);
    }

    #[test]
    fn the_same_object_compares_same_though_vpnaas_shows_more() {
        let mapped = desired(Kind::SiteConnection, &neutron_connection());
        let mut held = neutron_connection();
        held["status"] = json!("DOWN");
        held["status_reason"] = json!("NO_AGENT");
        held["peer_cidrs"] = Value::Null;
        assert_eq!(
            compare(Kind::SiteConnection, &mapped, &held),
            Comparison::Same
        );
    }

    #[test]
    fn differences_split_into_what_a_put_may_change_and_what_it_may_not() {
        let mapped = desired(Kind::SiteConnection, &neutron_connection());
        let mut held = neutron_connection();
        held["name"] = json!("renamed");
        held["psk"] = json!("old");
        held["dpd"] = json!({"action": "hold", "interval": 10, "timeout": 120});
        held["project_id"] = json!("p2");
        held["ikepolicy_id"] = json!("00000000-0000-4000-8000-000000000000");
        let Comparison::Differs { updatable, fixed } =
            compare(Kind::SiteConnection, &mapped, &held)
        else {
            panic!("they differ")
        };
        let mut names: Vec<&str> = updatable.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["dpd", "name", "psk"]);
        assert_eq!(updatable["psk"], "s3cret", "Neutron's value is the one put");
        assert_eq!(fixed, ["ikepolicy_id", "project_id"]);
    }

    #[test]
    fn a_connection_refers_to_its_service_policies_and_groups() {
        let refs = references(Kind::SiteConnection, &neutron_connection());
        assert_eq!(refs.len(), 5);
        assert!(refs.contains(&(
            Kind::IkePolicy,
            "6d8c4e7f-2a5b-4c6d-9e0f-1b2c3d4e5f60".into()
        )));
        let mut legacy = neutron_connection();
        legacy["local_ep_group_id"] = Value::Null;
        legacy["peer_ep_group_id"] = Value::Null;
        assert_eq!(references(Kind::SiteConnection, &legacy).len(), 3);
    }
}
