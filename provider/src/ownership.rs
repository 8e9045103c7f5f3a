//! "Is this field ours?", decided here and nowhere else.
//!
//! The provider shares every field it writes with someone: the user (who may request
//! addresses through the same annotation and `spec.loadBalancerIP`), kube-vip (which writes
//! `status.loadBalancer.ingress` in `--announcers=none` set-ups) and kube-vip-cloud-provider
//! (whose label and annotation it adopts). A field is *ours* when it holds exactly what our
//! record says we wrote (`ferrolb.io/allocated`) and the user did not ask for it
//! (`ferrolb.io/requested`). Only what is ours is ever removed or rewritten on release.

use std::net::IpAddr;

use crate::service_view::{IMPLEMENTATION_VALUE, ServiceView, split_raw};

/// `kube-vip.io/loadbalancerIPs` holds what we wrote.
pub fn annotation(view: &ServiceView) -> bool {
    view.allocated.is_some() && view.loadbalancer_ips == view.allocated
}

/// The annotation is ours and is not the user's own request (which stays when we let go).
pub fn annotation_removable(view: &ServiceView) -> bool {
    let users = split_raw(view.loadbalancer_ips.as_deref()) == split_raw(view.requested_record());
    annotation(view) && !users
}

/// `spec.loadBalancerIP` holds an address we wrote: it is in our record and was not what the
/// user asked for.
pub fn load_balancer_ip(view: &ServiceView) -> bool {
    match (view.load_balancer_ip(), &view.allocated) {
        (Some(ip), Some(_)) => {
            view.recorded_addresses()
                .iter()
                .any(|a| a.to_string() == ip)
                && !split_raw(view.requested_record()).iter().any(|r| r == ip)
        }
        _ => false,
    }
}

/// The `implementation` label has the value we (and kube-vip-cloud-provider) write.
pub fn implementation_label(view: &ServiceView) -> bool {
    view.implementation_label.as_deref() == Some(IMPLEMENTATION_VALUE)
}

/// `status.loadBalancer.ingress` lists exactly the addresses of our record, in order.
pub fn ingress(view: &ServiceView) -> bool {
    let recorded: Vec<String> = view
        .recorded_addresses()
        .iter()
        .map(IpAddr::to_string)
        .collect();
    !view.ingress.is_empty() && view.ingress.iter().map(|(ip, _)| ip).eq(recorded.iter())
}

/// `kube-vip.io/serviceInterface` holds the interface we wrote (`written`).
pub fn service_interface(view: &ServiceView, written: Option<&str>) -> bool {
    written.is_some() && view.service_interface() == written
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Service;
    use serde_json::json;

    use super::*;

    /// A LoadBalancer Service with these annotations, `spec.loadBalancerIP` and ingress IPs.
    fn view(annotations: serde_json::Value, lb_ip: Option<&str>, ingress: &[&str]) -> ServiceView {
        let service: Service = serde_json::from_value(json!({
            "metadata": {"namespace": "default", "name": "web", "annotations": annotations,
                         "labels": {"implementation": "kube-vip"}},
            "spec": {"type": "LoadBalancer", "loadBalancerIP": lb_ip},
            "status": {"loadBalancer": {"ingress":
                ingress.iter().map(|ip| json!({"ip": ip})).collect::<Vec<_>>()}},
        }))
        .unwrap();
        ServiceView::from_service(&service).unwrap()
    }

    #[test]
    fn each_field_is_ours_only_when_it_holds_our_record_and_not_the_users_request() {
        let allocated = json!({
            "kube-vip.io/loadbalancerIPs": "192.0.2.10",
            "ferrolb.io/allocated": "192.0.2.10",
        });
        let ours = view(allocated.clone(), Some("192.0.2.10"), &["192.0.2.10"]);
        assert!(annotation(&ours) && annotation_removable(&ours));
        assert!(load_balancer_ip(&ours) && ingress(&ours) && implementation_label(&ours));

        // The user asked for that address: the fields hold it, but they are the user's.
        let mut requested = allocated.clone();
        requested["ferrolb.io/requested"] = json!("192.0.2.10");
        let users = view(requested, Some("192.0.2.10"), &[]);
        assert!(annotation(&users), "it holds what we wrote");
        assert!(
            !annotation_removable(&users),
            "but releasing must not undo a request"
        );
        assert!(!load_balancer_ip(&users));
        assert!(!ingress(&users), "empty ingress is nobody's");

        // Someone else's values: a user's edit, kube-vip's ingress, no record of ours at all.
        let edited = view(
            json!({"kube-vip.io/loadbalancerIPs": "192.0.2.99", "ferrolb.io/allocated": "192.0.2.10"}),
            Some("192.0.2.99"),
            &["192.0.2.99"],
        );
        assert!(!annotation(&edited) && !load_balancer_ip(&edited) && !ingress(&edited));
        let foreign = view(
            json!({"kube-vip.io/loadbalancerIPs": "192.0.2.10"}),
            None,
            &[],
        );
        assert!(!annotation(&foreign) && !annotation_removable(&foreign));

        let with_interface = view(json!({"kube-vip.io/serviceInterface": "eth1"}), None, &[]);
        assert!(service_interface(&with_interface, Some("eth1")));
        assert!(!service_interface(&with_interface, Some("eth0")));
        assert!(!service_interface(&with_interface, None));
    }
}
