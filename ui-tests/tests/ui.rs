//! Compile-fail tests: each file under `tests/ui/` must fail to compile with exactly the
//! `.stderr` beside it (regenerate with `TRYBUILD=overwrite cargo test -p shmap-ui-tests`, then
//! read the diff); `tests/ui/pass/` must compile. The toolchain is pinned by
//! `rust-toolchain.toml`, so the messages are stable.

#[cfg(not(miri))]
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/bounds/*.rs");
    t.compile_fail("tests/ui/derive/*.rs");
    t.compile_fail("tests/ui/shm_table/*.rs");
    t.compile_fail("tests/ui/shm_ring/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
