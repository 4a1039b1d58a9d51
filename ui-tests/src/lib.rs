//! Compile-fail tests live in `tests/ui/`; this library is empty.
