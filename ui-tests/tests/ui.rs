//! Compile-fail tests: each file under `tests/ui/` must fail to compile with exactly the
//! `.stderr` beside it (regenerate with `TRYBUILD=overwrite cargo test -p shmap-ui-tests`, then
//! read the diff). The toolchain is pinned by `rust-toolchain.toml` so the messages are stable.

#[cfg(not(miri))]
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/**/*.rs");
}
