//! Bounds on every input of the object store, in one place so the README and the code agree.

/// The limits the binary configures (defaults are OSS's where OSS has one).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest object (simple PUT, append or completed multipart): 5 GiB.
    pub max_object_bytes: u64,
    /// Largest part of a multipart upload: 5 GiB.
    pub max_part_bytes: u64,
    /// Smallest part but the last: 100 KiB (OSS; S3 asks for 5 MiB, which passes this too).
    pub min_part_bytes: u64,
    /// Part numbers run 1..=this.
    pub max_parts: u32,
    /// User metadata, names and values together: 8 KiB (OSS).
    pub max_meta_bytes: usize,
    /// XML request bodies (multi-delete, complete multipart): 2 MiB.
    pub max_xml_bytes: usize,
    /// Keys in one multi-delete: 1000.
    pub max_delete_keys: usize,
    /// Buckets in all.
    pub max_buckets: usize,
    /// Open connections to the object-store listener.
    pub max_connections: usize,
    /// Objects up to this size are stored inline in the metadata database, so their PUT is
    /// one (group-)commit instead of a file sync, a directory sync and a commit: 64 KiB. It
    /// bounds the bytes a PUT holds in memory before its commit and keeps each row's overflow
    /// chain short; above it the copy through the WAL (and again at checkpoint) costs more
    /// than the two syncs it saves. Parts and appendable objects are always files.
    pub inline_max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_object_bytes: 5 << 30,
            max_part_bytes: 5 << 30,
            min_part_bytes: 100 << 10,
            max_parts: 10_000,
            max_meta_bytes: 8 << 10,
            max_xml_bytes: 2 << 20,
            max_delete_keys: 1000,
            max_buckets: 1000,
            max_connections: 1024,
            inline_max_bytes: 64 << 10,
        }
    }
}
