//! Body checksums: CRC-64/XZ (OSS's `x-oss-hash-crc64ecma`, always computed), and the S3
//! `x-amz-checksum-*` algorithms a client asks for (boto3 sends CRC32 by default since botocore
//! 1.36), computed only when asked.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// CRC-64/XZ (the ECMA-182 polynomial, reflected, init and xorout all ones; oss-protocol.md
/// §5) and the CRC-32s come from `crc-fast` (SIMD carry-less multiply, tens of GB/s; s3s
/// already depends on it): the `crc` crate's slice-by-16 tables cost about a millisecond of
/// CPU per MB of every upload.
pub fn crc64() -> crc_fast::Digest {
    crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Xz)
}

/// The CRC-64/XZ of `a ++ b` from the CRCs of `a` and `b` and the length of `b` (appends).
pub fn crc64_combine(a: u64, b: u64, b_len: u64) -> u64 {
    crc_fast::checksum_combine(crc_fast::CrcAlgorithm::Crc64Xz, a, b, b_len)
}

/// An S3 checksum algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Crc32,
    Crc32c,
    Sha1,
    Sha256,
}

impl Algorithm {
    /// The algorithm of an `x-amz-checksum-{name}` header.
    pub fn from_header(name: &str) -> Option<Algorithm> {
        match name.to_ascii_lowercase().strip_prefix("x-amz-checksum-")? {
            "crc32" => Some(Algorithm::Crc32),
            "crc32c" => Some(Algorithm::Crc32c),
            "sha1" => Some(Algorithm::Sha1),
            "sha256" => Some(Algorithm::Sha256),
            _ => None,
        }
    }

    pub fn header(self) -> &'static str {
        match self {
            Algorithm::Crc32 => "x-amz-checksum-crc32",
            Algorithm::Crc32c => "x-amz-checksum-crc32c",
            Algorithm::Sha1 => "x-amz-checksum-sha1",
            Algorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }
}

/// The running state of the requested algorithms.
#[derive(Clone, Default)]
pub struct Hashers {
    crc32: Option<crc_fast::Digest>,
    crc32c: Option<crc_fast::Digest>,
    sha1: Option<Sha1>,
    sha256: Option<Sha256>,
}

impl std::fmt::Debug for Hashers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hashers").finish_non_exhaustive()
    }
}

impl Hashers {
    pub fn with(algorithms: &[Algorithm]) -> Hashers {
        let mut h = Hashers::default();
        for a in algorithms {
            match a {
                Algorithm::Crc32 => {
                    h.crc32 = Some(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32IsoHdlc))
                }
                Algorithm::Crc32c => {
                    h.crc32c = Some(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi))
                }
                Algorithm::Sha1 => h.sha1 = Some(Sha1::new()),
                Algorithm::Sha256 => h.sha256 = Some(Sha256::new()),
            }
        }
        h
    }

    pub fn update(&mut self, data: &[u8]) {
        if let Some(d) = &mut self.crc32 {
            d.update(data);
        }
        if let Some(d) = &mut self.crc32c {
            d.update(data);
        }
        if let Some(d) = &mut self.sha1 {
            d.update(data);
        }
        if let Some(d) = &mut self.sha256 {
            d.update(data);
        }
    }

    /// The base64 value of an algorithm, if it was computed.
    pub fn value(&self, a: Algorithm) -> Option<String> {
        match a {
            Algorithm::Crc32 => self
                .crc32
                .as_ref()
                .map(|d| B64.encode((d.finalize() as u32).to_be_bytes())),
            Algorithm::Crc32c => self
                .crc32c
                .as_ref()
                .map(|d| B64.encode((d.finalize() as u32).to_be_bytes())),
            Algorithm::Sha1 => self.sha1.clone().map(|d| B64.encode(d.finalize())),
            Algorithm::Sha256 => self.sha256.clone().map(|d| B64.encode(d.finalize())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_matches_oss() {
        // oss-protocol.md §5.
        let crc = |b: &[u8]| {
            let mut d = crc64();
            d.update(b);
            d.finalize()
        };
        assert_eq!(crc(b"123456789"), 11051210869376104954);
        assert_eq!(crc(b"hello"), 11177612005948864433);
        assert_eq!(
            crc64_combine(crc(b"1234"), crc(b"56789"), 5),
            11051210869376104954
        );
        // Longer than one SIMD block, against the table-driven reference.
        let long: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let reference = crc::Crc::<u64>::new(&crc::CRC_64_XZ).checksum(&long);
        assert_eq!(crc(&long), reference);
    }

    #[test]
    fn crc32c_is_base64_big_endian() {
        let mut h = Hashers::with(&[Algorithm::Crc32c]);
        h.update(b"123456789");
        // CRC-32C check value 0xE3069283.
        assert_eq!(
            h.value(Algorithm::Crc32c).as_deref(),
            Some(B64.encode(0xE306_9283u32.to_be_bytes()).as_str())
        );
    }

    #[test]
    fn crc32_is_base64_big_endian() {
        let mut h = Hashers::with(&[Algorithm::Crc32]);
        h.update(b"hello");
        // python: base64.b64encode(zlib.crc32(b"hello").to_bytes(4, "big"))
        assert_eq!(h.value(Algorithm::Crc32).as_deref(), Some("NhCmhg=="));
    }
}
