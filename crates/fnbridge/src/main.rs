//! fnbridge binary (skeleton)
fn main() {}
