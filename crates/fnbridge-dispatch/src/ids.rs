//! Request, task and credential ids in FC's shapes.

use rand::Rng;

/// An FC 3.0 request id: `1-` + 8 hex digits of Unix seconds + `-` + 24 hex digits.
pub fn request_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut rng = rand::rng();
    let a: u64 = rng.random();
    let b: u32 = rng.random();
    format!("1-{:08x}-{:016x}{:08x}", secs as u32, a, b)
}

/// A random lower-case hex string of `n` bytes.
pub fn hex_token(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// A random UUID-shaped id (function and trigger ids, CDN trace ids).
pub fn uuid_like() -> String {
    let h = hex_token(16);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn shapes() {
        let r = super::request_id();
        assert_eq!(r.len(), 2 + 8 + 1 + 24);
        assert!(r.starts_with("1-"));
        assert_eq!(super::uuid_like().len(), 36);
        assert_ne!(super::hex_token(8), super::hex_token(8));
    }
}
