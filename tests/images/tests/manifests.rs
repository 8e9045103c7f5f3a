//! manifests/kustomization.yaml: `kubectl kustomize manifests/` renders every manifest (and
//! nothing else) with the images set in the kustomization, changing the kustomization changes
//! every image, and `kubectl apply -k manifests/` installs it all on an API server
//! (test-apiserver). These are the README's install commands.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use images::{Kustomization, ManifestObject, kustomization, objects};
use support::{assert_in_readme, prerequisites, repo_root, sh, version, workspace_binary};

const KUSTOMIZE: &str = "kubectl kustomize manifests/";
const APPLY: &str = "kubectl apply -k manifests/";
const DELETE: &str = "kubectl delete -k manifests/";
/// The README's uninstall commands for what the provider creates at run time.
const DELETE_RUNTIME: &[&str] = &[
    "kubectl -n kube-system delete secret ferrolb-ca ferrolb-announcer-tls ferrolb-heartbeat",
    "kubectl -n kube-system delete lease ferrolb-provider",
];
/// The README's install without kustomize.
const APPLY_FILES: &[&str] = &[
    "kubectl apply -f manifests/provider/   # the CRDs, RBAC, the pool ConfigMap, Deployment",
    "kubectl apply -f manifests/announcer/serviceaccount.yaml -f manifests/announcer/service.yaml -f manifests/announcer/daemonset.yaml",
];
/// Stand-ins for the Secrets and the Lease the provider creates at run time.
const RUNTIME_OBJECTS: &str = r#"{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ferrolb-ca", "namespace": "kube-system"}},
  {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ferrolb-announcer-tls", "namespace": "kube-system"}},
  {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ferrolb-heartbeat", "namespace": "kube-system"}},
  {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "ferrolb-provider", "namespace": "kube-system"}}
]}"#;
/// Optional manifests the kustomization leaves out on purpose: cert-manager is not always
/// installed (docs/certificates.md); the compat CRDs are for migrations and would replace
/// OpenELB's or Cilium's own.
const NOT_IN_KUSTOMIZATION: &[&str] = &[
    "announcer/certificate.yaml",
    "compat/eip-crd.yaml",
    "compat/cilium-lbippool-crd.yaml",
];
/// The images scripts/build-images.sh names by default, without the tag.
const BUILT_IMAGES: &[&str] = &[
    "ghcr.io/ferrolb/ferrolb-provider",
    "ghcr.io/ferrolb/ferrolb-announcer",
];

fn read_kustomization(dir: &Path) -> Kustomization {
    let path = dir.join("kustomization.yaml");
    let text = std::fs::read_to_string(&path).expect("manifests/kustomization.yaml");
    kustomization(&path.display().to_string(), &text).unwrap_or_else(|e| panic!("{e}"))
}

/// Every object of every manifest file under `dir` except the kustomization itself and
/// `NOT_IN_KUSTOMIZATION`, with the file (relative to `dir`) each came from.
fn objects_in_files(dir: &Path) -> Vec<(String, ManifestObject)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read manifests dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(dir)
                .expect("under dir")
                .display()
                .to_string();
            if !rel.ends_with(".yaml") || rel == "kustomization.yaml" {
                continue;
            }
            if NOT_IN_KUSTOMIZATION.contains(&rel.as_str()) {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("manifest file");
            for o in objects(&rel, &text).unwrap_or_else(|e| panic!("{e}")) {
                out.push((rel.clone(), o));
            }
        }
    }
    out
}

fn keys(objects: &[ManifestObject]) -> BTreeSet<String> {
    objects.iter().map(ManifestObject::key).collect()
}

#[test]
fn kustomize_renders_every_manifest_with_the_images_set_in_one_place() {
    if !prerequisites("kustomize test", false, &["kubectl"]) {
        return;
    }
    assert_in_readme(KUSTOMIZE);
    let repo = repo_root();
    let manifests = repo.join("manifests");
    let k = read_kustomization(&manifests);

    let files = objects_in_files(&manifests);
    let listed: BTreeSet<&str> = k.resources.iter().map(String::as_str).collect();
    let on_disk: BTreeSet<&str> = files.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        listed, on_disk,
        "manifests/kustomization.yaml `resources` must list every manifest file (except \
         {NOT_IN_KUSTOMIZATION:?}), so `kubectl apply -k` installs what `apply -f` would"
    );

    let rendered_text = sh(&repo, &[], KUSTOMIZE);
    let rendered = objects(KUSTOMIZE, &rendered_text).unwrap_or_else(|e| panic!("{e}"));
    let in_files: Vec<ManifestObject> = files.into_iter().map(|(_, o)| o).collect();
    assert_eq!(
        keys(&rendered),
        keys(&in_files),
        "objects rendered vs in the files"
    );

    // The images entries are the names scripts/build-images.sh gives, tagged with the
    // workspace version, and every image in the manifests goes through one of them.
    let names: BTreeSet<&str> = k.images.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        BUILT_IMAGES.iter().copied().collect(),
        "kustomization image names"
    );
    for image in &k.images {
        assert_eq!(
            image.reference(),
            format!("{}:{}", image.name, version()),
            "the kustomization should pull what scripts/build-images.sh builds by default"
        );
    }
    for o in &in_files {
        for image in &o.images {
            let name = image.rsplit_once(':').map_or(image.as_str(), |(n, _)| n);
            assert!(
                names.contains(name),
                "{} uses image {image}, which manifests/kustomization.yaml does not set",
                o.key()
            );
        }
    }
    let references: BTreeSet<String> = k.images.iter().map(|i| i.reference()).collect();
    let used: BTreeSet<String> = rendered.iter().flat_map(|o| o.images.clone()).collect();
    assert_eq!(used, references, "images in `{KUSTOMIZE}`");
    println!(
        "kustomize objects={} images={}",
        rendered.len(),
        used.into_iter().collect::<Vec<_>>().join(",")
    );
}

/// Copies the files of `from` into `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let path = entry.expect("dir entry").path();
        let dest = to.join(path.file_name().expect("file name"));
        if path.is_dir() {
            copy_dir(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).expect("copy file");
        }
    }
}

/// A copy of manifests/ in `dir`/manifests whose kustomization pulls
/// `registry.example/team/<binary>:<tag>`, as a user changes it for a registry or an upgrade.
fn edited_manifests(dir: &Path, tag: &str) {
    let copy = dir.join("manifests");
    copy_dir(&repo_root().join("manifests"), &copy);
    let path = copy.join("kustomization.yaml");
    let text = std::fs::read_to_string(&path).expect("kustomization");
    let edited: String = text
        .lines()
        .map(|l| {
            if let Some(name) = l.trim().strip_prefix("newName: ghcr.io/ferrolb/") {
                format!("    newName: registry.example/team/{name}")
            } else if l.trim().starts_with("newTag:") {
                format!("    newTag: {tag}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&path, edited).expect("write kustomization");
}

#[test]
fn changing_the_kustomization_images_changes_every_manifest() {
    if !prerequisites("kustomize test", false, &["kubectl"]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    edited_manifests(tmp.path(), "9.9.9-test");
    let out = sh(tmp.path(), &[], KUSTOMIZE);
    let used: BTreeSet<String> = objects("edited", &out)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .flat_map(|o| o.images)
        .collect();
    let expected: BTreeSet<String> = [
        "registry.example/team/ferrolb-provider:9.9.9-test",
        "registry.example/team/ferrolb-announcer:9.9.9-test",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(used, expected, "every image follows the kustomization");
}

/// test-apiserver on a free port, killed when dropped.
struct ApiServer {
    child: Child,
    kubeconfig: std::path::PathBuf,
}

impl ApiServer {
    fn start(dir: &Path) -> Self {
        let kubeconfig = dir.join("kubeconfig");
        let child = Command::new(workspace_binary("test-apiserver"))
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .stdout(Stdio::null())
            .spawn()
            .expect("start test-apiserver");
        let server = ApiServer { child, kubeconfig };
        let start = Instant::now();
        while !server.kubeconfig.is_file() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "test-apiserver wrote no kubeconfig within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn apply_k_installs_the_manifests_on_an_api_server() {
    if !prerequisites("apply -k test", false, &["kubectl"]) {
        return;
    }
    assert_in_readme(APPLY);
    let repo = repo_root();
    let tmp = tempfile::tempdir().expect("tempdir");
    let server = ApiServer::start(tmp.path());
    let kubeconfig = server.kubeconfig.display().to_string();
    // HOME: kubectl's discovery cache goes to the temporary folder, not the user's.
    let home = tmp.path().display().to_string();
    let env = [("KUBECONFIG", kubeconfig.as_str()), ("HOME", home.as_str())];

    let applied = sh(&repo, &env, APPLY);
    let rendered = objects(KUSTOMIZE, &sh(&repo, &[], KUSTOMIZE)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        applied.lines().filter(|l| l.ends_with(" created")).count(),
        rendered.len(),
        "`{APPLY}` should create every rendered object:\n{applied}"
    );
    let images = sh(
        &repo,
        &env,
        "kubectl -n kube-system get deployment/ferrolb-provider daemonset/ferrolb-announcer \
         -o jsonpath='{range .items[*]}{.spec.template.spec.containers[0].image}{\"\\n\"}{end}'",
    );
    assert_eq!(
        images.lines().collect::<Vec<_>>(),
        vec![
            format!("ghcr.io/ferrolb/ferrolb-provider:{}", version()),
            format!("ghcr.io/ferrolb/ferrolb-announcer:{}", version()),
        ],
        "images of the applied Deployment and DaemonSet"
    );
    // Applying again changes nothing.
    let again = sh(&repo, &env, APPLY);
    assert!(
        again.lines().all(|l| l.ends_with(" unchanged")),
        "a second `{APPLY}` should leave everything unchanged:\n{again}"
    );

    // Upgrade: a new tag in the kustomization, the same command, only the workloads change.
    let upgrade = tempfile::tempdir().expect("tempdir");
    edited_manifests(upgrade.path(), "9.9.9-test");
    let upgraded = sh(upgrade.path(), &env, APPLY);
    let configured: BTreeSet<&str> = upgraded
        .lines()
        .filter_map(|l| l.strip_suffix(" configured"))
        .collect();
    assert_eq!(
        configured,
        BTreeSet::from([
            "deployment.apps/ferrolb-provider",
            "daemonset.apps/ferrolb-announcer"
        ]),
        "an upgrade through newTag reconfigures the workloads only:\n{upgraded}"
    );

    // Uninstall, as the README says (the Secrets and the Lease stand for what the provider
    // creates at run time).
    let deleted = sh(&repo, &env, DELETE);
    assert_eq!(
        deleted.lines().filter(|l| l.ends_with(" deleted")).count(),
        rendered.len(),
        "`{DELETE}` should delete every object:\n{deleted}"
    );
    let runtime_objects = tmp.path().join("runtime-objects.json");
    std::fs::write(&runtime_objects, RUNTIME_OBJECTS).expect("runtime objects");
    sh(
        &repo,
        &env,
        &format!("kubectl create -f {}", runtime_objects.display()),
    );
    for command in DELETE_RUNTIME {
        assert_in_readme(command);
        sh(&repo, &env, command);
    }
    let left = sh(
        &repo,
        &env,
        "kubectl -n kube-system get secrets,leases,deployments,daemonsets,serviceaccounts -o name",
    );
    assert_eq!(left.trim(), "", "left after uninstalling");

    // Without kustomize: the files one by one install the same objects.
    let mut created = 0;
    for command in APPLY_FILES {
        assert_in_readme(command);
        created += sh(&repo, &env, command)
            .lines()
            .filter(|l| l.ends_with(" created"))
            .count();
    }
    assert_eq!(
        created,
        rendered.len(),
        "objects created by {APPLY_FILES:?}"
    );
    println!(
        "apply -k created={} second_apply=unchanged upgrade_configured={} delete -k deleted={} apply -f created={created}",
        rendered.len(),
        configured.len(),
        rendered.len()
    );
}
