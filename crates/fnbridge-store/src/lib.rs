//! fnbridge-store (skeleton)
