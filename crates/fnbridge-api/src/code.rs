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

/// Unpacks `zip` into `dest` (which must not exist yet). On error nothing is left behind.
pub fn unpack(zip: &[u8], dest: &Path) -> Result<(), String> {
    let r = unpack_inner(zip, dest);
    if r.is_err() {
        let _ = std::fs::remove_dir_all(dest);
    }
    r
}

fn unpack_inner(zip: &[u8], dest: &Path) -> Result<(), String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip))
        .map_err(|e| format!("code.zipFile: not a valid zip archive: {e}"))?;
    if archive.len() > MAX_CODE_ENTRIES {
        return Err(format!(
            "code.zipFile: {} entries, more than the limit of {MAX_CODE_ENTRIES}",
            archive.len()
        ));
    }
    std::fs::create_dir_all(dest).map_err(|e| format!("cannot create code directory: {e}"))?;
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| format!("code.zipFile: entry {i}: {e}"))?;
        let name = entry.name().to_string();
        let Some(rel) = entry.enclosed_name() else {
            return Err(format!(
                "code.zipFile: entry '{name}' has a path that escapes the code directory"
            ));
        };
        if entry.is_symlink() {
            return Err(format!(
                "code.zipFile: entry '{name}' is a symbolic link, which is not allowed"
            ));
        }
        let out = dest.join(&rel);
        if entry.is_dir() {
            std::fs::create_dir_all(&out).map_err(|e| format!("cannot create '{name}': {e}"))?;
            continue;
        }
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create '{name}': {e}"))?;
        }
        let mut f =
            std::fs::File::create(&out).map_err(|e| format!("cannot write '{name}': {e}"))?;
        // Count real bytes, not the header's claim: a zip bomb can lie about sizes.
        let budget = MAX_CODE_UNZIPPED - total;
        let n = std::io::copy(&mut (&mut entry).take(budget + 1), &mut f)
            .map_err(|e| format!("code.zipFile: entry '{name}': {e}"))?;
        total += n;
        if total > MAX_CODE_UNZIPPED {
            return Err(format!(
                "code.zipFile: unpacks to more than {MAX_CODE_UNZIPPED} bytes"
            ));
        }
        #[cfg(unix)]
        if let Some(mode) = entry.unix_mode() {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(
                &out,
                std::fs::Permissions::from_mode(mode & 0o755 | 0o600),
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
        let err = unpack(&zip_of(&[("ok.py", b""), ("../evil.py", b"x")]), &dest).unwrap_err();
        assert!(err.contains("escapes the code directory"), "{err}");
        assert!(!dest.exists());
        assert!(!dir.path().join("evil.py").exists());
        let err = unpack(&zip_of(&[("/etc/evil", b"x")]), &dest).unwrap_err();
        assert!(err.contains("escapes"), "{err}");
    }

    #[test]
    fn rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            unpack(b"not a zip", &dir.path().join("c"))
                .unwrap_err()
                .contains("not a valid zip")
        );
        assert!(decode_zip("%%%").unwrap_err().contains("not valid base64"));
    }
}
