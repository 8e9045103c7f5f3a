//! Drives the HTTP front door with the real `kubectl` (the one on PATH):
//! apply, get -o json, annotate, label, patch (merge, json, strategic),
//! get -w, delete waiting on a finalizer, replace with a stale resourceVersion,
//! apply --server-side.
//!
//! Without kubectl the test prints a message and returns, except under
//! `CI=true`, where it fails.

mod support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use support::write;
use test_apiserver::TestApiServer;
use tokio::io::AsyncReadExt;

const OBJECTS: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: vip-config
data:
  range-global: 192.0.2.10-192.0.2.20
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: LoadBalancer
  selector: {app: web}
  ports:
  - name: http
    port: 80
";

/// kubectl prints compact JSON to a pipe and indented JSON to a terminal.
fn compact(text: &str) -> String {
    text.replace([' ', '\n'], "")
}

/// Reads `kubectl get -w` output into `seen` until it contains `needle` (compacted).
async fn read_until(stdout: &mut tokio::process::ChildStdout, seen: &mut String, needle: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !compact(seen).contains(needle) {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, stdout.read(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!("kubectl get -w never printed {needle}; output so far:\n{seen}")
            })
            .expect("read watch output");
        assert!(n > 0, "kubectl get -w ended early; output:\n{seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

fn service_json(server: &TestApiServer) -> Value {
    server
        .object("v1", "Service", Some("default"), "web")
        .unwrap_or_else(|| panic!("service default/web is missing from the store"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_drives_the_http_front_door() {
    let Some(cluster) = support::cluster().await else {
        return;
    };
    let server = &cluster.server;
    let k = &cluster.kubectl;
    let dir = &cluster.dir;

    // apply -f, validation on (needs /openapi/v3).
    let objects = write(dir.path(), "objects.yaml", OBJECTS);
    let out = k.ok(&["apply", "-f", &objects.to_string_lossy()]).await;
    assert!(
        out.contains("configmap/vip-config created") && out.contains("service/web created"),
        "{out}"
    );
    assert!(
        server
            .object("v1", "ConfigMap", Some("default"), "vip-config")
            .is_some()
    );

    // Re-apply with a changed port: client-side apply computes a strategic patch.
    let changed = write(
        dir.path(),
        "changed.yaml",
        &OBJECTS.replace("port: 80", "port: 8080"),
    );
    let out = k.ok(&["apply", "-f", &changed.to_string_lossy()]).await;
    assert!(out.contains("service/web configured"), "{out}");
    let ports = service_json(server)["spec"]["ports"].clone();
    let summary: Vec<(Option<&str>, Option<i64>)> = ports
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| (p["name"].as_str(), p["port"].as_i64()))
        .collect();
    assert_eq!(summary, vec![(Some("http"), Some(8080))], "{ports}");

    // Human-readable get uses server-side Tables.
    let table = k.ok(&["get", "svc", "web"]).await;
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ],
        "{table}"
    );
    assert!(
        table.contains("LoadBalancer") && table.contains("<pending>"),
        "{table}"
    );

    // get -o json
    let got: Value =
        serde_json::from_str(&k.ok(&["get", "svc", "web", "-o", "json"]).await).expect("json");
    assert_eq!(got["kind"], "Service");
    assert!(
        got["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty())
    );
    let list: Value =
        serde_json::from_str(&k.ok(&["get", "svc", "-o", "json"]).await).expect("json list");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));

    // annotate, label, label selector
    k.ok(&["annotate", "svc", "web", "ferrolb.io/note=hello"])
        .await;
    k.ok(&["label", "svc", "web", "tier=front"]).await;
    let svc = service_json(server);
    assert_eq!(svc["metadata"]["annotations"]["ferrolb.io/note"], "hello");
    assert_eq!(svc["metadata"]["labels"]["tier"], "front");
    assert_eq!(
        k.ok(&["get", "svc", "-l", "tier=front", "-o", "name"])
            .await
            .trim(),
        "service/web"
    );
    assert_eq!(
        k.ok(&["get", "svc", "-l", "tier=back", "-o", "name"])
            .await
            .trim(),
        ""
    );

    // patch, three ways
    k.ok(&[
        "patch",
        "svc",
        "web",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"type":"ClusterIP"}}"#,
    ])
    .await;
    k.ok(&[
        "patch",
        "svc",
        "web",
        "--type",
        "json",
        "-p",
        r#"[{"op":"add","path":"/metadata/labels/j","value":"k"}]"#,
    ])
    .await;
    k.ok(&[
        "patch",
        "svc",
        "web",
        "--type",
        "strategic",
        "-p",
        r#"{"spec":{"ports":[{"port":443,"name":"https"}]}}"#,
    ])
    .await;
    let svc = service_json(server);
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(svc["metadata"]["labels"]["j"], "k");
    let ports: Vec<i64> = svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["port"].as_i64())
        .collect();
    assert_eq!(
        ports,
        vec![8080, 443],
        "strategic patch merges ports by port"
    );

    // get -w sees a change
    let mut watch = k
        .command(&[
            "get",
            "svc",
            "web",
            "-w",
            "-o",
            "json",
            "--output-watch-events",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kubectl get -w");
    let mut stdout = watch.stdout.take().expect("piped stdout");
    let mut seen = String::new();
    // The current object first (so the watch is running), then the change.
    read_until(&mut stdout, &mut seen, r#""type":"ADDED""#).await;
    k.ok(&["annotate", "svc", "web", "watched=yes"]).await;
    read_until(&mut stdout, &mut seen, r#""watched":"yes""#).await;
    let modified = compact(&seen);
    let change = modified.find(r#""watched":"yes""#).unwrap_or(0);
    assert!(
        modified[..change].contains(r#""type":"MODIFIED""#),
        "the change came as MODIFIED:\n{seen}"
    );
    watch.kill().await.expect("stop kubectl get -w");

    // delete waits on a finalizer
    k.ok(&[
        "patch",
        "cm",
        "vip-config",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"finalizers":["ferrolb.io/test"]}}"#,
    ])
    .await;
    let mut delete = k
        .command(&["delete", "cm", "vip-config"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn delete");
    // Wait until kubectl's DELETE has marked the object, then give it time to (wrongly) return.
    let marked = async {
        loop {
            let obj = server.object("v1", "ConfigMap", Some("default"), "vip-config");
            if obj.is_some_and(|o| o["metadata"]["deletionTimestamp"].is_string()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), marked)
        .await
        .expect("kubectl delete set a deletionTimestamp");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        delete.try_wait().expect("poll delete").is_none(),
        "kubectl delete returned before the finalizer was removed"
    );
    k.ok(&[
        "patch",
        "cm",
        "vip-config",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ])
    .await;
    let status = tokio::time::timeout(Duration::from_secs(15), delete.wait())
        .await
        .expect("kubectl delete returns once the finalizer is gone")
        .expect("wait");
    assert!(status.success(), "kubectl delete failed: {status}");
    assert!(
        server
            .object("v1", "ConfigMap", Some("default"), "vip-config")
            .is_none()
    );

    // replace with a stale resourceVersion is 409
    let stale = k.ok(&["get", "svc", "web", "-o", "json"]).await;
    let stale_path = write(dir.path(), "stale.json", &stale);
    k.ok(&["label", "svc", "web", "bump=1"]).await;
    let out = k
        .run(&["replace", "-f", &stale_path.to_string_lossy()])
        .await;
    assert!(!out.ok, "replace with a stale resourceVersion must fail");
    assert!(
        out.stderr.contains("Conflict") && out.stderr.contains("the object has been modified"),
        "{}",
        out.stderr
    );

    // Server-side apply, twice: the second is a no-op.
    let ssa = write(
        dir.path(),
        "ssa.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa-config\ndata:\n  a: \"1\"\n",
    );
    let out = k
        .ok(&["apply", "--server-side", "-f", &ssa.to_string_lossy()])
        .await;
    assert!(
        out.contains("configmap/ssa-config serverside-applied"),
        "{out}"
    );
    let first_rv = server
        .object("v1", "ConfigMap", Some("default"), "ssa-config")
        .map(|o| o["metadata"]["resourceVersion"].clone());
    k.ok(&["apply", "--server-side", "-f", &ssa.to_string_lossy()])
        .await;
    let second_rv = server
        .object("v1", "ConfigMap", Some("default"), "ssa-config")
        .map(|o| o["metadata"]["resourceVersion"].clone());
    assert_eq!(
        first_rv, second_rv,
        "re-applying the same manifest writes nothing"
    );
}
