//! Container images as their runtimes see them: layers stacked with overlay
//! whiteouts applied, reported per image instead of per layer.
//!
//! The runtime detectors look into every layer on its own. A file an upper
//! layer deletes is still in the lower layer's directory, so taken alone
//! that layer would report a JDK the image no longer has. Here the layers of
//! each image are put in order (bottom first) and a component found in a
//! layer is kept for an image only if no layer above it in that image
//!
//! * whites the path (or a directory above it) out: a `.wh.NAME` file (the
//!   OCI layer format) or a character device 0/0 named `NAME` (how overlayfs
//!   upper directories, thus docker's and podman's extracted layers, store
//!   it), or
//! * makes a directory above it opaque: `.wh..wh..opq` inside it, or the
//!   xattr `trusted.overlay.opaque=y` (`user.overlay.opaque` when rootless).
//!
//! Images are identified from the runtimes' own metadata, never by running
//! them: docker's `image/overlay2` (`repositories.json` for the tags,
//! `imagedb` for each image's `rootfs.diff_ids`, `layerdb` for each layer's
//! `diff`, `parent` and `cache-id`, the `overlay2` directory name) and
//! podman's `overlay-images/images.json` and `overlay-layers/layers.json`.
//! containerd keeps the snapshot chain in a bbolt database (`metadata.db`)
//! that cgmig does not read: its snapshots stay reported per layer, as do
//! layers no image names (dangling layers, containers' upper layers).
//!
//! The image name (first tag, else the image id) also gives versions of
//! images that *are* a component: `gcr.io/cadvisor/cadvisor:v0.39.0` is
//! cAdvisor 0.39.0.

use std::collections::{BTreeMap, BTreeSet};

use super::io::{Reader, join};
use super::{Component, Place};

const DOCKER_META: &str = "/var/lib/docker/image/overlay2";
const PODMAN: &str = "/var/lib/containers/storage";

/// One image: its name and its layers (directory names in the store), bottom first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// `docker` or `podman`.
    pub store: String,
    /// First tag (`nginx:1.25`), else `sha256:` and 12 hex digits of the id.
    pub name: String,
    /// Layer directories, bottom first.
    pub layers: Vec<String>,
}

fn short_id(id: &str) -> String {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    format!("sha256:{}", hex.get(..12).unwrap_or(hex))
}

/// Docker's images from its overlay2 image metadata.
pub fn docker_images(rd: &mut Reader<'_>) -> Vec<Image> {
    let layerdb = format!("{DOCKER_META}/layerdb/sha256");
    // (parent chain id or "", diff id) → (chain id, cache id)
    let mut by_parent_diff: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
    for chain in rd.subdirs(&layerdb).into_iter().take(rd.limits.max_layers) {
        let dir = join(&layerdb, &chain);
        let read = |rd: &mut Reader<'_>, f: &str| rd.text(&join(&dir, f)).map(|t| t.trim().to_string());
        let (Some(diff), Some(cache)) = (read(rd, "diff"), read(rd, "cache-id")) else {
            continue;
        };
        let parent = read(rd, "parent").unwrap_or_default();
        by_parent_diff.insert((parent, diff), (format!("sha256:{chain}"), cache));
    }
    let tags = docker_tags(rd);
    let content = format!("{DOCKER_META}/imagedb/content/sha256");
    let mut out = Vec::new();
    for id in rd
        .list(&content)
        .into_iter()
        .map(|e| e.name)
        .take(rd.limits.max_layers)
    {
        let Some(text) = rd.text(&join(&content, &id)) else {
            continue;
        };
        let Ok(config) = serde_json::from_str::<serde_json::Value>(&text) else {
            rd.note_abs(
                &join(&content, &id),
                "image config is not JSON: its layers stay reported one by one",
            );
            continue;
        };
        let diff_ids = config["rootfs"]["diff_ids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut parent = String::new();
        let mut layers = Vec::new();
        for d in diff_ids.iter().filter_map(|d| d.as_str()) {
            let Some((chain, cache)) = by_parent_diff.get(&(parent.clone(), d.to_string())) else {
                layers.clear();
                break; // a layer missing from layerdb: the chain cannot be trusted
            };
            layers.push(cache.clone());
            parent = chain.clone();
        }
        if layers.is_empty() {
            continue;
        }
        let full = format!("sha256:{id}");
        let name = tags.get(&full).cloned().unwrap_or_else(|| short_id(&id));
        out.push(Image {
            store: "docker".into(),
            name,
            layers,
        });
    }
    out
}

/// Image id → its first `repo:tag` (digest references are skipped).
fn docker_tags(rd: &mut Reader<'_>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(text) = rd.text(&format!("{DOCKER_META}/repositories.json")) else {
        return out;
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if let Some(repos) = v["Repositories"].as_object() {
        for refs in repos.values().filter_map(|r| r.as_object()) {
            for (reference, id) in refs {
                if let Some(id) = id.as_str()
                    && !reference.contains('@')
                {
                    out.entry(id.to_string()).or_insert_with(|| reference.clone());
                }
            }
        }
    }
    out
}

/// Podman's (containers/storage) images from its JSON metadata.
pub fn podman_images(rd: &mut Reader<'_>) -> Vec<Image> {
    let json = |rd: &mut Reader<'_>, f: &str| -> Vec<serde_json::Value> {
        rd.text(&format!("{PODMAN}/{f}"))
            .and_then(|t| serde_json::from_str::<Vec<serde_json::Value>>(&t).ok())
            .unwrap_or_default()
    };
    let parents: BTreeMap<String, String> = json(rd, "overlay-layers/layers.json")
        .iter()
        .filter_map(|l| {
            Some((
                l["id"].as_str()?.to_string(),
                l["parent"].as_str().unwrap_or("").to_string(),
            ))
        })
        .collect();
    let mut out = Vec::new();
    for img in json(rd, "overlay-images/images.json") {
        let (Some(id), Some(top)) = (img["id"].as_str(), img["layer"].as_str()) else {
            continue;
        };
        let mut layers = vec![top.to_string()];
        while let Some(p) = parents
            .get(layers.last().map_or("", |l| l.as_str()))
            .filter(|p| !p.is_empty())
        {
            if layers.len() > 1000 || layers.contains(p) {
                break; // a loop or an absurd depth: keep what was found
            }
            layers.push(p.clone());
        }
        layers.reverse();
        let name = img["names"][0]
            .as_str()
            .map_or_else(|| short_id(id), str::to_string);
        out.push(Image {
            store: "podman".into(),
            name,
            layers,
        });
    }
    out
}

/// Whether a layer (`root`: its rootfs directory) deletes `path` or hides it
/// under an opaque directory.
pub fn hides(rd: &mut Reader<'_>, root: &str, path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let mut dir = String::new();
    for (i, part) in parts.iter().enumerate() {
        let at = format!("{root}{dir}");
        if rd.exists(&join(&at, &format!(".wh.{part}"))) || rd.is_char_whiteout(&join(&at, part)) {
            return true;
        }
        dir = format!("{dir}/{part}");
        let is_last = i + 1 == parts.len();
        if !is_last {
            let d = format!("{root}{dir}");
            if rd.exists(&join(&d, ".wh..wh..opq")) || rd.is_opaque_dir(&d) {
                return true;
            }
        }
    }
    false
}

/// The rootfs directory of a layer in a store (`/var/lib/docker/overlay2/ID/diff`).
fn layer_root(store: &str, layer: &str) -> Option<String> {
    let (_, dir, sub) = super::stores::STORES.iter().find(|(s, ..)| *s == store)?;
    Some(format!("{dir}/{layer}/{sub}"))
}

/// Replace the per-layer image components by per-image ones where the image
/// is known: kept for each image whose upper layers do not white the path
/// out, once per image and path (the topmost layer's copy wins). Layers of
/// no known image keep their per-layer components.
pub fn per_image(rd: &mut Reader<'_>, images: &[Image], comps: Vec<Component>) -> Vec<Component> {
    let mut member: BTreeMap<(&str, &str), Vec<(usize, usize)>> = BTreeMap::new();
    for (i, img) in images.iter().enumerate() {
        for (k, layer) in img.layers.iter().enumerate() {
            member
                .entry((img.store.as_str(), layer.as_str()))
                .or_default()
                .push((i, k));
        }
    }
    let mut out = Vec::new();
    // (image, layer index from the top, component): topmost layer first.
    let mut placed: Vec<(usize, std::cmp::Reverse<usize>, Component)> = Vec::new();
    for c in comps {
        let hit = match &c.place {
            Place::Image { store, layer, .. } => member.get(&(store.as_str(), layer.as_str())),
            Place::Host => None,
        };
        let Some(m) = hit else {
            out.push(c);
            continue;
        };
        for &(i, k) in m {
            let mut c = c.clone();
            if let Place::Image { image, .. } = &mut c.place {
                *image = Some(images[i].name.clone());
            }
            placed.push((i, std::cmp::Reverse(k), c));
        }
    }
    placed.sort_by_key(|a| (a.0, a.1));
    let mut seen: BTreeSet<(usize, String, String)> = BTreeSet::new();
    for (i, std::cmp::Reverse(k), c) in placed {
        let img = &images[i];
        let hidden = img.layers[k + 1..]
            .iter()
            .filter_map(|l| layer_root(&img.store, l))
            .any(|root| hides(rd, &root, &c.path));
        if !hidden && seen.insert((i, c.name.clone(), c.path.clone())) {
            out.push(c);
        }
    }
    out
}

/// Components an image *is*, from its name: cAdvisor images (`…/cadvisor:v0.39.0`).
pub fn named_components(img: &Image) -> Option<Component> {
    let (repo, tag) = img
        .name
        .rsplit_once(':')
        .filter(|(r, _)| !r.ends_with("sha256"))?;
    let base = repo.rsplit('/').next()?;
    let name = match base {
        "cadvisor" => "cadvisor",
        _ => return None,
    };
    let version = tag.trim_start_matches('v');
    version
        .starts_with(|c: char| c.is_ascii_digit())
        .then(|| Component {
            name: name.into(),
            version: version.into(),
            path: img.name.clone(),
            place: Place::Image {
                store: img.store.clone(),
                layer: img.layers.last().cloned().unwrap_or_default(),
                image: Some(img.name.clone()),
            },
            evidence: "image tag".into(),
            details: BTreeMap::new(),
        })
}
