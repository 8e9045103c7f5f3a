//! `ferrolb-provider`: the LoadBalancer part of a cloud-controller-manager.
//!
//! It reads address pools from a kube-vip-cloud-provider compatible ConfigMap, allocates
//! addresses to `type: LoadBalancer` Services and writes them where kube-vip-style announcers
//! look (`kube-vip.io/loadbalancerIPs`).
#![deny(unsafe_code)]

pub mod announce;
pub mod args;
pub mod certs;
pub mod controller;
pub mod desired;
pub mod error;
pub mod http;
pub mod index;
pub mod ipam;
pub mod lean;
pub mod lease;
pub mod memory;
pub mod metrics;
pub mod nodes;
pub mod outcome;
pub mod ownership;
pub mod patch;
pub mod peers;
pub mod pool_watch;
pub mod pools;
pub mod relist;
pub mod service_view;
pub mod stored_condition;
pub mod strconv;
pub mod stream;
pub mod telemetry;
pub mod writer;
