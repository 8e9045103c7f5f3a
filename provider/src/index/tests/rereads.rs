//! Re-reads after a failed write, racing the watch (cluster mode).
//!
//! The writer's re-read and the Service watch reach the index as separate streams, so a
//! re-read may arrive after the watch already brought a newer version. The writer drops a
//! queued write computed from the resourceVersion another write of the same Service just
//! replaced (it would be refused anyway, and the watch event of that write recomputes the
//! Service). A late re-read that put the replaced version back in the index would make every
//! later write of the Service look like such a stale one, so what it carried — here the
//! `ferrolb.io/Announced` condition — would never be written.

use super::*;
use crate::announce::model::NodeName;

const ANNOUNCED: &str = "ferrolb.io/Announced";

fn cluster_index() -> Index {
    let mut index = index_with(IndexSettings {
        cluster_default_mode: Some(Mode::Layer2),
        ..settings()
    });
    assert!(index.reset_services(&[]).is_empty());
    assert!(
        index
            .apply_config(Some(&config(&[("cidr-global", "198.51.100.0/28")])))
            .is_empty()
    );
    assert!(index.is_serving());
    index
}

fn announced(svc: &Service) -> Option<String> {
    svc.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == ANNOUNCED)
        .map(|c| c.status.clone())
}

/// Applies every write the index asks for, in order, to `svc` (as the writer would).
fn commit_all(mut svc: Service, writes: Vec<ServiceWrite>) -> Service {
    for write in writes {
        svc = commit(&svc, &write);
    }
    svc
}

fn announced_by(index: &Index, node: &str) -> ServiceStatus {
    let key = ServiceKey::new("default", "web");
    let address = index.allocation(&key).expect("allocated").addresses[0];
    ServiceStatus::Announced {
        mode: Mode::Layer2,
        by: Box::new([(address, Box::new([NodeName::from(node)]) as Box<[_]>)]),
    }
}

#[test]
fn a_re_read_older_than_the_watch_does_not_bring_back_the_replaced_version() {
    let mut index = cluster_index();
    let key = ServiceKey::new("default", "web");
    let created = service("default", "web", 10);
    // A write computed from the created version (resourceVersion 1) allocates.
    let allocation = only(index.apply_service(&created), "web");
    assert_eq!(allocation.resource_version, "1");
    let allocated = commit(&created, &allocation);
    // The watch brings the written version (2) before the re-read of an earlier failed
    // write, which read version 1 (the write before `allocation` was refused).
    let settled = commit_all(allocated.clone(), index.apply_service(&allocated));
    let settled = commit_all(settled.clone(), index.apply_service(&settled));
    assert!(index.apply_service(&settled).is_empty(), "settled");
    assert_ne!(settled.metadata.resource_version.as_deref(), Some("1"));

    // The late re-read of version 1, after a write computed from version 0 failed.
    let mut pending = index.apply_reread("0", &created);
    // The planner's verdict: announced.
    pending.extend(index.set_announced(&key, Some(announced_by(&index, "node-a"))));
    // What the writer queues for the Service, merged as it merges (the newer write wins).
    let write = pending
        .into_iter()
        .reduce(ServiceWrite::absorb)
        .expect("a write for the verdict");
    // The writer drops a queued write computed from the version the allocation write
    // replaced (version 1), and no watch event follows: it must be computed from the
    // version the watch brought last, so that it is sent and accepted.
    assert_ne!(
        write.resource_version, allocation.resource_version,
        "computed from the version the allocation write replaced: the writer drops it as stale"
    );
    let after = commit(&settled, &write);
    assert_eq!(announced(&after).as_deref(), Some("True"));
    assert!(index.apply_service(&after).is_empty());
}

#[test]
fn a_re_read_of_the_version_the_failed_write_was_computed_from_is_taken() {
    let mut index = cluster_index();
    let created = service("default", "web", 10);
    let allocation = only(index.apply_service(&created), "web");
    // Somebody else changed the Service meanwhile: the write is refused, and the re-read
    // brings version 2 before the watch does.
    let mut edited = created.clone();
    edited.metadata.resource_version = Some("2".into());
    let again = only(
        index.apply_reread(&allocation.resource_version, &edited),
        "web",
    );
    assert_eq!(again.resource_version, "2");
    let after = commit(&edited, &again);
    assert!(annotation(&after, "ferrolb.io/allocated").is_some());
}

#[test]
fn a_re_read_that_finds_the_service_gone_deletes_it_only_if_the_watch_has_not_moved_on() {
    let mut index = cluster_index();
    let key = ServiceKey::new("default", "web");
    let created = service("default", "web", 10);
    let allocation = only(index.apply_service(&created), "web");
    let allocated = commit(&created, &allocation);
    let _ = index.apply_service(&allocated);
    // A re-read answering 404 for a write computed from version 1: the watch already
    // brought version 2, so the Service is not forgotten on the re-read's word.
    assert!(index.reread_gone("1", &key).is_empty());
    assert!(index.allocation(&key).is_some());
    // For the version the index holds, it is.
    let held = allocated
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();
    let _ = index.reread_gone(&held, &key);
    assert!(index.allocation(&key).is_none());
}
