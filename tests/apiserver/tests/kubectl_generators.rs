//! kubectl as a person types it against test-apiserver: the `kubectl create
//! <kind>` generators (which send protobuf bodies), `get`/`describe`/`scale` of
//! the kinds they make, and `kubectl apply -f manifests/provider/` and
//! `manifests/announcer/` (after the cert-manager CRDs those need).
//!
//! Without kubectl the tests print a message and pass, except under `CI=true`.

mod support;

use support::{cluster, repo_root, rows};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_generators_make_objects_that_print_like_a_real_cluster() {
    let Some(c) = cluster().await else {
        return;
    };
    let k = &c.kubectl;
    let steps: [(&[&str], &str); 11] = [
        (&["create", "namespace", "shop"], "namespace/shop created"),
        (
            &[
                "create",
                "deployment",
                "web",
                "--image=nginx:1.27",
                "--replicas=2",
                "--port=80",
            ],
            "deployment.apps/web created",
        ),
        (
            &["create", "service", "clusterip", "web", "--tcp=80:8080"],
            "service/web created",
        ),
        (
            &[
                "create",
                "secret",
                "generic",
                "creds",
                "--from-literal=user=admin",
            ],
            "secret/creds created",
        ),
        (
            &[
                "create",
                "configmap",
                "settings",
                "--from-literal=mode=layer2",
            ],
            "configmap/settings created",
        ),
        (
            &["create", "serviceaccount", "robot"],
            "serviceaccount/robot created",
        ),
        (
            &[
                "create",
                "role",
                "reader",
                "--verb=get,list",
                "--resource=services",
            ],
            "role.rbac.authorization.k8s.io/reader created",
        ),
        (
            &[
                "create",
                "rolebinding",
                "robot-reads",
                "--role=reader",
                "--serviceaccount=default:robot",
            ],
            "rolebinding.rbac.authorization.k8s.io/robot-reads created",
        ),
        (
            &[
                "create",
                "clusterrole",
                "node-reader",
                "--verb=get",
                "--resource=nodes",
            ],
            "clusterrole.rbac.authorization.k8s.io/node-reader created",
        ),
        (
            &[
                "create",
                "clusterrolebinding",
                "robot-nodes",
                "--clusterrole=node-reader",
                "--serviceaccount=default:robot",
            ],
            "clusterrolebinding.rbac.authorization.k8s.io/robot-nodes created",
        ),
        (
            &[
                "create",
                "deployment",
                "idle",
                "--image=busybox",
                "--replicas=0",
            ],
            "deployment.apps/idle created",
        ),
    ];
    for (args, want) in steps {
        let out = k.ok(args).await;
        assert_eq!(out.trim(), want, "kubectl {args:?}");
    }
    let creates: Vec<_> = c
        .server
        .request_log()
        .entries()
        .into_iter()
        .filter(|r| r.verb == "create")
        .collect();
    assert_eq!(creates.len(), 11, "{creates:?}");
    assert!(creates.iter().all(|r| r.status == 201), "{creates:?}");
    let minor = k.minor_version().await;
    if minor >= 30 {
        assert!(
            creates
                .iter()
                .all(|r| r.content_type == "application/vnd.kubernetes.protobuf"),
            "kubectl 1.{minor} generators send protobuf: {creates:?}"
        );
    }

    // What the generators built, as a real server stores it.
    let deploy = c
        .server
        .object("apps/v1", "Deployment", Some("default"), "web")
        .expect("deployment stored");
    assert_eq!(deploy["spec"]["replicas"], 2);
    assert_eq!(deploy["spec"]["selector"]["matchLabels"]["app"], "web");
    assert_eq!(
        deploy["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
        "25%"
    );
    let container = &deploy["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx:1.27");
    assert_eq!(container["ports"][0]["containerPort"], 80);
    assert_eq!(container["imagePullPolicy"], "IfNotPresent");
    let idle = k
        .ok(&[
            "get",
            "deployment",
            "idle",
            "-o",
            "jsonpath={.spec.replicas}",
        ])
        .await;
    assert_eq!(idle, "0", "an explicit --replicas=0 survives decoding");
    assert_eq!(
        k.ok(&[
            "get",
            "secret",
            "creds",
            "-o",
            "jsonpath={.type} {.data.user}"
        ])
        .await,
        "Opaque YWRtaW4="
    );
    assert_eq!(
        k.ok(&[
            "get",
            "svc",
            "web",
            "-o",
            "jsonpath={.spec.ports[0].targetPort}"
        ])
        .await,
        "8080"
    );

    // Tables.
    let table = rows(&k.ok(&["get", "deployments"]).await);
    assert_eq!(
        table[0],
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert_eq!(table[1][..4], ["idle", "0/0", "0", "0"]);
    assert_eq!(table[2][..4], ["web", "0/2", "0", "0"]);
    let table = rows(&k.ok(&["get", "secret", "creds"]).await);
    assert_eq!(table[0], ["NAME", "TYPE", "DATA", "AGE"]);
    assert_eq!(table[1][..3], ["creds", "Opaque", "1"]);
    let table = rows(&k.ok(&["get", "sa", "robot"]).await);
    assert_eq!(table[0], ["NAME", "SECRETS", "AGE"]);
    assert_eq!(table[1][..2], ["robot", "0"]);
    let table = rows(&k.ok(&["get", "rolebinding", "robot-reads"]).await);
    assert_eq!(table[0], ["NAME", "ROLE", "AGE"]);
    assert_eq!(table[1][..2], ["robot-reads", "Role/reader"]);
    let table = rows(&k.ok(&["get", "clusterrole", "node-reader"]).await);
    assert_eq!(table[0], ["NAME", "CREATED", "AT"]);
    assert!(table[1][1].ends_with('Z'), "{table:?}");
    let labels = k.ok(&["get", "ns", "shop", "--show-labels"]).await;
    assert!(
        labels.contains("kubernetes.io/metadata.name=shop"),
        "{labels}"
    );
    let all = k.ok(&["get", "all"]).await;
    assert!(
        all.contains("deployment.apps/web") && all.contains("service/web"),
        "{all}"
    );

    // kubectl scale goes through the /scale subresource.
    let out = k.ok(&["scale", "deployment", "web", "--replicas=3"]).await;
    assert_eq!(out.trim(), "deployment.apps/web scaled");
    let table = rows(&k.ok(&["get", "deployment", "web"]).await);
    assert_eq!(table[1][..2], ["web", "0/3"]);
    let err = k
        .fails(&["scale", "deployment", "web", "--replicas=-1"])
        .await;
    assert!(err.contains("replicas"), "{err}");

    // describe reads the objects the way it does on a real cluster (spacing
    // differs between kubectl releases, so words are compared).
    let squeeze = |text: String| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let described = squeeze(k.ok(&["describe", "deployment", "web"]).await);
    for want in [
        "Replicas: 3 desired | 0 updated | 0 total | 0 available | 0 unavailable",
        "StrategyType: RollingUpdate",
        "RollingUpdateStrategy: 25% max unavailable, 25% max surge",
        "Image: nginx:1.27",
        "Port: 80/TCP",
    ] {
        assert!(
            described.contains(want),
            "missing {want:?} in:\n{described}"
        );
    }
    let described = squeeze(k.ok(&["describe", "role", "reader"]).await);
    assert!(
        described.contains("services [] [] [get list]"),
        "{described}"
    );
    let described = squeeze(k.ok(&["describe", "secret", "creds"]).await);
    assert!(
        described.contains("Type: Opaque") && described.contains("user: 5 bytes"),
        "{described}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_manifests_apply_and_read_back() {
    let Some(c) = cluster().await else {
        return;
    };
    let k = &c.kubectl;
    let root = repo_root();
    let provider = root.join("manifests/provider");
    let announcer = root.join("manifests/announcer");
    let cert_manager = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cert-manager-crds.yaml");
    let provider = provider.to_string_lossy();
    let announcer = announcer.to_string_lossy();

    let out = k.ok(&["apply", "-f", &provider]).await;
    for want in [
        "serviceaccount/ferrolb-provider created",
        "clusterrole.rbac.authorization.k8s.io/",
        "clusterrolebinding.rbac.authorization.k8s.io/",
        "role.rbac.authorization.k8s.io/",
        "rolebinding.rbac.authorization.k8s.io/",
        "deployment.apps/ferrolb-provider created",
        "configmap/",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }

    // Without cert-manager the Certificate kinds are unknown, as on a real cluster.
    let err = k.fails(&["apply", "-f", &announcer]).await;
    assert!(
        err.contains("no matches for kind \"Issuer\" in version \"cert-manager.io/v1\""),
        "{err}"
    );
    k.ok(&["apply", "-f", &cert_manager.to_string_lossy()])
        .await;
    let out = k.ok(&["apply", "-f", &announcer]).await;
    for want in [
        "daemonset.apps/ferrolb-announcer",
        "service/ferrolb-announcer",
        "serviceaccount/ferrolb-announcer",
        "issuer.cert-manager.io/ferrolb-selfsigned created",
        "certificate.cert-manager.io/ferrolb-announcer-tls created",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }

    // Everything reads back, and applying again changes nothing.
    for dir in [&provider, &announcer] {
        let names = k.ok(&["get", "-f", dir, "-o", "name"]).await;
        let applied = k
            .ok(&["apply", "-f", dir, "--dry-run=client", "-o", "name"])
            .await;
        assert_eq!(
            names.lines().count(),
            applied.lines().count(),
            "get -f {dir}:\n{names}\napply:\n{applied}"
        );
        let again = k.ok(&["apply", "-f", dir]).await;
        assert!(
            again.lines().all(|l| l.ends_with(" unchanged")),
            "re-applying {dir}:\n{again}"
        );
    }
    let table = rows(
        &k.ok(&["get", "daemonset", "-n", "kube-system", "ferrolb-announcer"])
            .await,
    );
    assert_eq!(
        table[0],
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "NODE",
            "SELECTOR",
            "AGE"
        ]
    );
    let certs = rows(&k.ok(&["get", "certs", "-n", "kube-system"]).await);
    assert_eq!(certs[0], ["NAME", "READY", "SECRET", "AGE"]);
    assert!(
        certs
            .iter()
            .any(|r| r[..3] == ["ferrolb-announcer-tls", "<none>", "ferrolb-announcer-tls"]),
        "{certs:?}"
    );
}
