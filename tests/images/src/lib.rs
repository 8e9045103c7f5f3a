//! What the image and manifest tests read from YAML: the objects of a manifest stream (kind,
//! namespace, name, container images) and the `resources` and `images` of
//! `manifests/kustomization.yaml`.
//!
//! ```text
//!   manifests/**/*.yaml ──objects──▶ {(kind, ns, name)}  ◀──objects── kubectl kustomize manifests/
//!   manifests/kustomization.yaml ──kustomization──▶ resources, images (name → newName:newTag)
//! ```
//!
//! A small reader for the block-style YAML our manifests use (no flow mappings at the top of
//! an object, two-space indentation), so the tests need no YAML crate. What it does not
//! understand it reports as an error naming the file and line rather than guessing.

#![forbid(unsafe_code)]

/// One object of a manifest stream.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ManifestObject {
    /// `kind` at the top of the object.
    pub kind: String,
    /// `metadata.namespace`, empty for cluster-scoped objects.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// Every `image:` value in the object, in order.
    pub images: Vec<String>,
}

impl ManifestObject {
    /// `Kind namespace/name`, as the tests print it.
    pub fn key(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// One entry of the kustomization's `images:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageOverride {
    /// The image name the manifests use.
    pub name: String,
    /// The name the cluster pulls instead (the same name when absent).
    pub new_name: String,
    /// The tag the cluster pulls.
    pub new_tag: String,
}

impl ImageOverride {
    /// `newName:newTag`, the reference kustomize writes into the manifests.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.new_name, self.new_tag)
    }
}

/// What the tests read from `kustomization.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Kustomization {
    /// `resources:`, paths relative to the kustomization's folder.
    pub resources: Vec<String>,
    /// `images:`.
    pub images: Vec<ImageOverride>,
}

/// The objects of a YAML stream (documents separated by `---`); comment-only documents are
/// skipped. `source` names the stream in errors.
pub fn objects(source: &str, stream: &str) -> Result<Vec<ManifestObject>, String> {
    let mut out = Vec::new();
    let mut doc: Vec<(usize, &str)> = Vec::new();
    for (i, line) in stream.lines().enumerate() {
        if line.trim_end() == "---" {
            out.extend(object(source, &doc)?);
            doc.clear();
        } else {
            doc.push((i + 1, line));
        }
    }
    out.extend(object(source, &doc)?);
    Ok(out)
}

fn object(source: &str, doc: &[(usize, &str)]) -> Result<Option<ManifestObject>, String> {
    let content: Vec<(usize, &str)> = doc
        .iter()
        .copied()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect();
    let Some(&(first_line, _)) = content.first() else {
        return Ok(None);
    };
    let mut kind = None;
    let mut namespace = String::new();
    let mut name = None;
    let mut images = Vec::new();
    let mut in_metadata = false;
    for &(n, line) in &content {
        if !line.starts_with(' ') && !line.starts_with('-') {
            in_metadata = line.trim_end() == "metadata:";
            if let Some(v) = line.strip_prefix("kind:") {
                kind = Some(scalar(v));
            }
        } else if in_metadata {
            // Only direct children of metadata (two spaces), not labels or annotations.
            if let Some(v) = line.strip_prefix("  name:") {
                name = Some(scalar(v));
            } else if let Some(v) = line.strip_prefix("  namespace:") {
                namespace = scalar(v);
            }
        }
        let trimmed = line.trim_start().trim_start_matches("- ");
        if let Some(v) = trimmed.strip_prefix("image:") {
            let image = scalar(v);
            if image.is_empty() {
                return Err(format!("{source}:{n}: `image:` without a value"));
            }
            images.push(image);
        }
    }
    match (kind, name) {
        (Some(kind), Some(name)) if !kind.is_empty() && !name.is_empty() => {
            Ok(Some(ManifestObject {
                kind,
                namespace,
                name,
                images,
            }))
        }
        _ => Err(format!(
            "{source}:{first_line}: the document starting here has no top-level `kind:` \
             and `metadata.name`"
        )),
    }
}

/// `resources` and `images` of a kustomization file; `source` names it in errors.
pub fn kustomization(source: &str, text: &str) -> Result<Kustomization, String> {
    let mut k = Kustomization::default();
    let mut section = "";
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') {
            section = line.split(':').next().unwrap_or_default();
            continue;
        }
        let item = line.trim_start();
        match section {
            "resources" => match item.strip_prefix("- ") {
                Some(path) => k.resources.push(scalar(path)),
                None => return Err(format!("{source}:{n}: expected `- PATH` under resources")),
            },
            "images" => {
                if let Some(v) = item.strip_prefix("- name:") {
                    k.images.push(ImageOverride {
                        name: scalar(v),
                        new_name: String::new(),
                        new_tag: String::new(),
                    });
                    continue;
                }
                let Some(entry) = k.images.last_mut() else {
                    return Err(format!(
                        "{source}:{n}: an images entry must start with `- name:`"
                    ));
                };
                if let Some(v) = item.strip_prefix("newName:") {
                    entry.new_name = scalar(v);
                } else if let Some(v) = item.strip_prefix("newTag:") {
                    entry.new_tag = scalar(v);
                } else {
                    return Err(format!(
                        "{source}:{n}: unexpected `{item}` in an images entry"
                    ));
                }
            }
            _ => {}
        }
    }
    for image in &mut k.images {
        if image.new_name.is_empty() {
            image.new_name = image.name.clone();
        }
        if image.new_tag.is_empty() {
            return Err(format!(
                "{source}: images entry `{}` has no newTag; the tag is set here, in one place",
                image.name
            ));
        }
    }
    Ok(k)
}

/// A scalar value: trimmed, without a trailing comment or surrounding quotes.
fn scalar(v: &str) -> String {
    let v = v.split(" #").next().unwrap_or_default().trim();
    v.trim_matches('"').trim_matches('\'').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_take_kind_metadata_and_every_image() {
        let stream = "# comment only\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  \
                      name: sa\n  namespace: kube-system\n  labels:\n    name: not-this\n---\n\
                      kind: DaemonSet\nmetadata:\n  name: ds\nspec:\n  template:\n    spec:\n      \
                      containers:\n        - name: a\n          image: \"r/a:1\"\n        - image: r/b:2 # x\n";
        let got = objects("s", stream).unwrap();
        assert_eq!(
            got,
            vec![
                ManifestObject {
                    kind: "ServiceAccount".into(),
                    namespace: "kube-system".into(),
                    name: "sa".into(),
                    images: vec![],
                },
                ManifestObject {
                    kind: "DaemonSet".into(),
                    namespace: String::new(),
                    name: "ds".into(),
                    images: vec!["r/a:1".into(), "r/b:2".into()],
                },
            ]
        );
    }

    #[test]
    fn a_document_without_kind_is_an_error_naming_its_line() {
        let err = objects("f.yaml", "kind: A\nmetadata:\n  name: a\n---\nfoo: bar\n").unwrap_err();
        assert!(err.starts_with("f.yaml:5:"), "{err}");
    }

    #[test]
    fn kustomization_reads_resources_and_images() {
        let text = "kind: Kustomization\nresources:\n  - a.yaml\n  - b/c.yaml # x\nimages:\n  - name: r/p\n    \
                    newName: q/p\n    newTag: 0.2.0\n  - name: r/a\n    newTag: \"1\"\n";
        let k = kustomization("k", text).unwrap();
        assert_eq!(k.resources, vec!["a.yaml", "b/c.yaml"]);
        assert_eq!(k.images[0].reference(), "q/p:0.2.0");
        assert_eq!(k.images[1].reference(), "r/a:1");
    }

    #[test]
    fn kustomization_image_without_tag_is_an_error() {
        let err = kustomization("k", "images:\n  - name: r/p\n    newName: q/p\n").unwrap_err();
        assert!(err.contains("`r/p` has no newTag"), "{err}");
    }
}
