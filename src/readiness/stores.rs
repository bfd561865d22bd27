//! Where container runtimes keep image layers: read by the image detectors
//! (`runtimes`, `images`) and by the reader's layer bookkeeping (`io`).

/// Container storages: (store name, directory of layers, subdirectory that is the rootfs).
pub const STORES: &[(&str, &str, &str)] = &[
    ("docker", "/var/lib/docker/overlay2", "diff"),
    (
        "containerd",
        "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots",
        "fs",
    ),
    ("podman", "/var/lib/containers/storage/overlay", "diff"),
];
