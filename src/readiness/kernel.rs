//! The kernel's config and the boot command line from every place a
//! distribution keeps it.
//!
//! * config: `/boot/config-RELEASE`, else `/proc/config.gz` (gzip, inflated
//!   with flate2 up to the per-file limit); only the cgroup-relevant options
//!   are kept;
//! * boot lines: the running `/proc/cmdline`, `/etc/default/grub`
//!   (`GRUB_CMDLINE_LINUX`, `GRUB_CMDLINE_LINUX_DEFAULT`) and
//!   `/etc/default/grub.d/*.cfg`, BLS entries (`/boot/loader/entries/*.conf`,
//!   `options`), `/etc/kernel/cmdline`, grubenv `kernelopts=`, Flatcar's
//!   `/usr/share/oem/grub.cfg`, and the Raspberry Pi `cmdline.txt` files.
//!   Each becomes a [`Setting`] of family `boot` whose key names the place;
//!   the files `convert` rewrites are kept whole.

use std::collections::BTreeMap;
use std::io::Read;

use super::io::{Reader, join};
use super::{ConfigFile, KernelConfig, Readiness, Setting};

/// Kernel options the readiness rules look at.
pub const OPTIONS: &[&str] = &[
    "CONFIG_CGROUPS",
    "CONFIG_CGROUP_BPF",
    "CONFIG_MEMCG",
    "CONFIG_MEMCG_V1",
    "CONFIG_CGROUP_SCHED",
    "CONFIG_FAIR_GROUP_SCHED",
    "CONFIG_CFS_BANDWIDTH",
    "CONFIG_CPUSETS",
    "CONFIG_CPUSETS_V1",
    "CONFIG_CGROUP_PIDS",
    "CONFIG_CGROUP_FREEZER",
    "CONFIG_CGROUP_HUGETLB",
    "CONFIG_CGROUP_MISC",
    "CONFIG_CGROUP_DEVICE",
    "CONFIG_BLK_CGROUP",
    "CONFIG_BLK_CGROUP_IOCOST",
    "CONFIG_BFQ_GROUP_IOSCHED",
    "CONFIG_PSI",
    "CONFIG_PSI_DEFAULT_DISABLED",
];

/// Scan the kernel config and every boot line.
pub fn scan(rd: &mut Reader<'_>, release: Option<&str>, out: &mut Readiness) {
    out.kernel_config = kernel_config(rd, release);
    boot_lines(rd, out);
}

fn kernel_config(rd: &mut Reader<'_>, release: Option<&str>) -> Option<KernelConfig> {
    if let Some(r) = release {
        let path = format!("/boot/config-{r}");
        if let Some(text) = rd.text(&path) {
            return Some(KernelConfig {
                options: parse_config(&text),
                path,
            });
        }
    }
    let path = "/proc/config.gz";
    let gz = rd.read_at(path, 0, rd.limits.max_file_bytes)?;
    let mut text = String::new();
    let limit = rd.limits.max_file_bytes;
    if let Err(e) = flate2::read::GzDecoder::new(&gz[..])
        .take(limit)
        .read_to_string(&mut text)
    {
        rd.note_abs(path, format!("cannot inflate: {e}"));
        return None;
    }
    Some(KernelConfig {
        options: parse_config(&text),
        path: path.into(),
    })
}

/// `CONFIG_X=y` / `# CONFIG_X is not set` → option → `y`/`m`/`n`, for [`OPTIONS`].
pub fn parse_config(text: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for l in text.lines() {
        let (k, v) = if let Some(rest) = l.strip_prefix("# ") {
            match rest.strip_suffix(" is not set") {
                Some(k) => (k, "n"),
                None => continue,
            }
        } else {
            match l.split_once('=') {
                Some((k, v)) => (k, v),
                None => continue,
            }
        };
        if OPTIONS.contains(&k) {
            m.insert(k.to_string(), v.trim_matches('"').to_string());
        }
    }
    m
}

fn boot(file: &str, line: usize, key: &str, value: &str) -> Setting {
    Setting {
        family: "boot".into(),
        file: file.into(),
        line: Some(line),
        section: None,
        key: key.into(),
        value: value.into(),
    }
}

fn keep(out: &mut Readiness, kind: &str, path: &str, text: &str) {
    out.files.push(ConfigFile {
        kind: kind.into(),
        path: path.into(),
        text: text.into(),
    });
}

fn boot_lines(rd: &mut Reader<'_>, out: &mut Readiness) {
    if let Some(t) = rd.text("/proc/cmdline") {
        out.settings.push(boot("/proc/cmdline", 1, "running", t.trim()));
    }
    let grub = rd.with_dropins("/etc/default/grub", "/etc/default/grub.d", ".cfg");
    for f in grub {
        let Some(text) = rd.text(&f) else { continue };
        out.settings.extend(grub_default(&f, &text));
        keep(out, "grub-default", &f, &text);
    }
    for f in rd.files_ending("/boot/loader/entries", ".conf") {
        let path = join("/boot/loader/entries", &f);
        let Some(text) = rd.text(&path) else { continue };
        for (i, l) in text.lines().enumerate() {
            if let Some(o) = l.strip_prefix("options") {
                out.settings.push(boot(&path, i + 1, "bls options", o.trim()));
            }
        }
        keep(out, "bls", &path, &text);
    }
    for (kind, f) in [
        ("kernel-cmdline", "/etc/kernel/cmdline"),
        ("rpi-cmdline", "/boot/cmdline.txt"),
        ("rpi-cmdline", "/boot/firmware/cmdline.txt"),
    ] {
        let Some(text) = rd.text(f) else { continue };
        out.settings.push(boot(f, 1, kind, text.trim()));
        keep(out, kind, f, &text);
    }
    for f in ["/boot/grub2/grubenv", "/boot/grub/grubenv"] {
        let Some(text) = rd.text(f) else { continue };
        for (i, l) in text.lines().enumerate() {
            if let Some(o) = l.strip_prefix("kernelopts=") {
                out.settings.push(boot(f, i + 1, "grubenv kernelopts", o.trim()));
            }
        }
    }
    if let Some(text) = rd.text("/usr/share/oem/grub.cfg") {
        for (i, l) in text.lines().enumerate() {
            if l.contains("linux_append") {
                let v = l.split_once('=').map_or("", |(_, v)| v);
                out.settings.push(boot(
                    "/usr/share/oem/grub.cfg",
                    i + 1,
                    "flatcar linux_append",
                    v.trim().trim_matches(['"', '\'']),
                ));
            }
        }
    }
}

/// `GRUB_CMDLINE_LINUX[_DEFAULT]="..."` lines of a grub defaults file.
pub fn grub_default(file: &str, text: &str) -> Vec<Setting> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let l = l.trim();
        for key in ["GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT"] {
            if let Some(v) = l.strip_prefix(key).and_then(|r| r.strip_prefix('=')) {
                out.push(boot(file, i + 1, key, v.trim().trim_matches(['"', '\''])));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_options_set_and_unset() {
        let c = parse_config(
            "CONFIG_CGROUPS=y\n# CONFIG_CGROUP_BPF is not set\nCONFIG_MEMCG=y\nCONFIG_EXT4_FS=m\n",
        );
        assert_eq!(c.get("CONFIG_CGROUP_BPF").map(String::as_str), Some("n"));
        assert_eq!(c.get("CONFIG_MEMCG").map(String::as_str), Some("y"));
        assert!(!c.contains_key("CONFIG_EXT4_FS"));
    }

    #[test]
    fn grub_defaults_both_keys() {
        let s = grub_default(
            "/etc/default/grub",
            "GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX=\"systemd.unified_cgroup_hierarchy=0\"\n",
        );
        let kv: Vec<(&str, &str, Option<usize>)> = s
            .iter()
            .map(|s| (s.key.as_str(), s.value.as_str(), s.line))
            .collect();
        assert_eq!(
            kv,
            vec![
                ("GRUB_CMDLINE_LINUX_DEFAULT", "quiet", Some(2)),
                (
                    "GRUB_CMDLINE_LINUX",
                    "systemd.unified_cgroup_hierarchy=0",
                    Some(3)
                )
            ]
        );
    }
}
