//! Crash test.
