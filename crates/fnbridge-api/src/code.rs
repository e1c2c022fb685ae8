//! Code packages: decodes the base64 zip of `code.zipFile`, computes its CRC-64 checksum, and
//! unpacks it safely: every entry must stay inside the target directory (no `..`, no absolute
//! paths, no symlinks), and entry count and unpacked size are bounded.

use std::io::Read;
use std::path::Path;

use base64::Engine;
use fnbridge_event::limits::{MAX_CODE_ENTRIES, MAX_CODE_UNZIPPED, MAX_CODE_ZIP};

/// CRC-64/XZ (ECMA-182, reflected), the checksum OSS reports as `x-oss-hash-crc64ecma` and FC as
/// `codeChecksum`.
pub fn crc64(data: &[u8]) -> u64 {
    crc::Crc::<u64>::new(&crc::CRC_64_XZ).checksum(data)
}

/// Decodes `code.zipFile`.
pub fn decode_zip(b64: &str) -> Result<Vec<u8>, String> {
    if b64.len() > MAX_CODE_ZIP / 3 * 4 + 4 {
        return Err(format!(
            "code.zipFile: larger than the {MAX_CODE_ZIP}-byte limit for a code package"
        ));
    }
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| format!("code.zipFile: not valid base64: {e}"))
}

/// Why a deployment step failed: the package's fault (400), or the server's disk (5xx).
#[derive(Debug)]
pub enum DeployError {
    /// The package or its `requirements.txt` is wrong.
    Invalid(String),
    /// The file system holding the code has no space (or quota) left.
    DiskFull(String),
    /// Another failure of the server's file system.
    Io(String),
}

impl DeployError {
    /// Classifies a file-system error met while writing under `dir`: `what` says what was being
    /// done.
    pub fn io(e: std::io::Error, dir: &Path, what: impl std::fmt::Display) -> DeployError {
        use std::io::ErrorKind::{QuotaExceeded, StorageFull};
        if matches!(e.kind(), StorageFull | QuotaExceeded) {
            DeployError::DiskFull(no_space(dir, format_args!("{what}: {e}")))
        } else {
            DeployError::Io(format!("{what}: {e}"))
        }
    }
}

/// The message for a full disk, naming the directory whose disk it is.
pub(crate) fn no_space(dir: &Path, detail: impl std::fmt::Display) -> String {
    format!(
        "no space left on the disk holding {}; free space there and retry ({detail})",
        dir.display()
    )
}

impl std::fmt::Display for DeployError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeployError::Invalid(m) | DeployError::DiskFull(m) | DeployError::Io(m) => {
                f.write_str(m)
            }
        }
    }
}

/// Unpacks `zip` into `dest` (which must not exist yet). On error nothing is left behind.
pub fn unpack(zip: &[u8], dest: &Path) -> Result<(), DeployError> {
    let r = unpack_inner(zip, dest);
    if r.is_err() {
        let _ = std::fs::remove_dir_all(dest);
    }
    r
}

fn unpack_inner(zip: &[u8], dest: &Path) -> Result<(), DeployError> {
    let invalid = DeployError::Invalid;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip))
        .map_err(|e| invalid(format!("code.zipFile: not a valid zip archive: {e}")))?;
    if archive.len() > MAX_CODE_ENTRIES {
        return Err(invalid(format!(
            "code.zipFile: {} entries, more than the limit of {MAX_CODE_ENTRIES}",
            archive.len()
        )));
    }
    let io = |e, what: String| DeployError::io(e, dest, what);
    std::fs::create_dir_all(dest).map_err(|e| io(e, "cannot create code directory".into()))?;
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| invalid(format!("code.zipFile: entry {i}: {e}")))?;
        let name = entry.name().to_string();
        let Some(rel) = entry.enclosed_name() else {
            return Err(invalid(format!(
                "code.zipFile: entry '{name}' has a path that escapes the code directory"
            )));
        };
        if entry.is_symlink() {
            return Err(invalid(format!(
                "code.zipFile: entry '{name}' is a symbolic link, which is not allowed"
            )));
        }
        let out = dest.join(&rel);
        if entry.is_dir() {
            std::fs::create_dir_all(&out).map_err(|e| io(e, format!("cannot create '{name}'")))?;
            continue;
        }
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| io(e, format!("cannot create '{name}'")))?;
        }
        let mut f =
            std::fs::File::create(&out).map_err(|e| io(e, format!("cannot write '{name}'")))?;
        // Count real bytes, not the header's claim: a zip bomb can lie about sizes. Read and
        // write separately, so a bad entry is the package's fault and a failed write the disk's.
        let budget = MAX_CODE_UNZIPPED - total;
        let mut limited = (&mut entry).take(budget + 1);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = limited
                .read(&mut buf)
                .map_err(|e| invalid(format!("code.zipFile: entry '{name}': {e}")))?;
            if n == 0 {
                break;
            }
            std::io::Write::write_all(&mut f, &buf[..n])
                .map_err(|e| io(e, format!("cannot write '{name}'")))?;
            total += n as u64;
        }
        if total > MAX_CODE_UNZIPPED {
            return Err(invalid(format!(
                "code.zipFile: unpacks to more than {MAX_CODE_UNZIPPED} bytes"
            )));
        }
        #[cfg(unix)]
        if let Some(mode) = entry.unix_mode() {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(
                &out,
                std::fs::Permissions::from_mode(mode & 0o755 | 0o644),
            );
        }
    }
    Ok(())
}

/// Zips a deployed code directory for GetFunctionCode, the same bytes every time for the same
/// files (sorted entries, a fixed timestamp), so the checksum answered with the URL is the
/// checksum of what the URL serves. Python's bytecode caches are left out: they appear as the
/// function runs. Bounded by the code package limit.
pub fn zip_dir(dir: &Path) -> Result<Vec<u8>, String> {
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    let mut files = Vec::new();
    collect(dir, dir, &mut files, 0)?;
    files.sort();
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut total: u64 = 0;
    for rel in files {
        let path = dir.join(&rel);
        let meta = std::fs::symlink_metadata(&path).map_err(|e| format!("{rel}: {e}"))?;
        #[cfg(unix)]
        let mode = {
            use std::os::unix::fs::PermissionsExt;
            meta.permissions().mode() & 0o777
        };
        #[cfg(not(unix))]
        let mode = 0o644;
        let opts = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(mode);
        let data = std::fs::read(&path).map_err(|e| format!("{rel}: {e}"))?;
        total += data.len() as u64;
        if total > MAX_CODE_UNZIPPED {
            return Err(format!(
                "the code is larger than {MAX_CODE_UNZIPPED} bytes unpacked"
            ));
        }
        w.start_file(rel.as_str(), opts)
            .and_then(|_| w.write_all(&data).map_err(Into::into))
            .map_err(|e| format!("zip {rel}: {e}"))?;
    }
    let out = w.finish().map_err(|e| format!("zip: {e}"))?.into_inner();
    if out.len() > MAX_CODE_ZIP {
        return Err(format!(
            "the zipped code is larger than the {MAX_CODE_ZIP}-byte code package limit"
        ));
    }
    Ok(out)
}

/// Regular files under `dir`, as `/`-separated paths relative to `root`; symlinks are skipped
/// (unpacking refuses them, so only installed packages could have made one).
fn collect(root: &Path, dir: &Path, out: &mut Vec<String>, depth: usize) -> Result<(), String> {
    if depth > 64 || out.len() > MAX_CODE_ENTRIES * 4 {
        return Err("the code directory is too deep or has too many files".into());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for e in entries {
        let e = e.map_err(|e| e.to_string())?;
        let name = e.file_name();
        let t = e.file_type().map_err(|e| e.to_string())?;
        if name == "__pycache__" || name.to_string_lossy().ends_with(".pyc") {
            continue;
        }
        if t.is_dir() {
            collect(root, &e.path(), out, depth + 1)?;
        } else if t.is_file() {
            let rel = e.path();
            let rel = rel.strip_prefix(root).map_err(|e| e.to_string())?;
            out.push(
                rel.components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/"),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut buf);
            for (name, data) in entries {
                w.start_file(*name, zip::write::SimpleFileOptions::default())
                    .unwrap();
                w.write_all(data).unwrap();
            }
            w.finish().unwrap();
        }
        buf.into_inner()
    }

    #[test]
    fn crc64_matches_known_vector() {
        // CRC-64/XZ check value for "123456789".
        assert_eq!(crc64(b"123456789"), 0x995dc9bbdf1939fa);
    }

    #[test]
    fn unpacks_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("code");
        unpack(
            &zip_of(&[("index.py", b"x=1"), ("lib/util.py", b"y=2")]),
            &dest,
        )
        .unwrap();
        assert_eq!(std::fs::read(dest.join("lib/util.py")).unwrap(), b"y=2");
    }

    #[test]
    fn rejects_escaping_paths_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("code");
        let err = unpack(&zip_of(&[("ok.py", b""), ("../evil.py", b"x")]), &dest)
            .unwrap_err()
            .to_string();
        assert!(err.contains("escapes the code directory"), "{err}");
        assert!(!dest.exists());
        assert!(!dir.path().join("evil.py").exists());
        let err = unpack(&zip_of(&[("/etc/evil", b"x")]), &dest)
            .unwrap_err()
            .to_string();
        assert!(err.contains("escapes"), "{err}");
    }

    #[test]
    fn rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            unpack(b"not a zip", &dir.path().join("c"))
                .unwrap_err()
                .to_string()
                .contains("not a valid zip")
        );
        assert!(decode_zip("%%%").unwrap_err().contains("not valid base64"));
    }
}
