//! fnbridge-api (skeleton)
