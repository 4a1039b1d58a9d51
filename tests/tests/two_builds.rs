//! Two builds of one program whose key struct differs in one field's type (`u32` and `i32`:
//! same size, same alignment). The second opens the segment the first created, is refused with
//! `LayoutMismatch` naming both layouts, and the segment is left byte for byte as it was.

use std::process::Command;

use shmap_tests::ShmName;

fn run(build: &str, args: &[&str]) -> String {
    let exe = match build {
        "v1" => env!("CARGO_BIN_EXE_schema_v1"),
        _ => env!("CARGO_BIN_EXE_schema_v2"),
    };
    let out = Command::new(exe).args(args).output().expect("run the schema binary");
    assert!(
        out.status.success(),
        "{build} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_build_with_another_key_layout_is_refused_and_changes_nothing() {
    let name = ShmName::new("two-builds");
    assert_eq!(run("v1", &["create", name.as_str()]), "ok {account:u32@0;order:u32@4} 3x1999");
    let before = std::fs::read(name.path()).unwrap();

    let refused = run("v2", &["open", name.as_str()]);
    assert!(refused.starts_with("error LayoutMismatch { role: Key"), "{refused}");
    assert!(
        refused.contains(
            "key layout mismatch: expected {account:u32@0;order:i32@4} (size 8, align 4, hash"
        ) && refused.contains("found {account:u32@0;order:u32@4} (size 8, align 4, hash"),
        "the message names both layouts: {refused}"
    );
    assert!(std::fs::read(name.path()).unwrap() == before, "the segment was modified");

    // The build that created it still reads it.
    assert_eq!(run("v1", &["open", name.as_str()]), "ok {account:u32@0;order:u32@4} 3x1999");
}
