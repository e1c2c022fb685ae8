//! fnbridge-dispatch (skeleton)
