//! Scroll files.
