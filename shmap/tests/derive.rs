//! The derive macros on types that must be accepted, and the rules of the layout hash.

use shmap::{
    AccessMode, BitsInteger, FixedString, ShmHashTable, ShmKey, ShmLayout, ShmValue, TypeLayout,
    shm_table,
};

#[derive(ShmKey, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
struct PlayerId {
    shard: u32,
    id: u32,
}

#[derive(ShmValue, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Position {
    x: f32,
    y: f32,
}

#[derive(ShmValue, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Player {
    id: PlayerId, // a key type is also a value type
    pos: Position,
    gold: u64,
    name: FixedString<14>,
    level: BitsInteger<7>,
    inventory: [u16; 4],
}

/// The same fields as `PlayerId` under another name.
#[derive(ShmKey)]
#[repr(C)]
struct RenamedPlayerId {
    shard: u32,
    id: u32,
}

/// `PlayerId` with its fields swapped.
#[derive(ShmKey)]
#[repr(C)]
struct SwappedPlayerId {
    id: u32,
    shard: u32,
}

/// `PlayerId` with a field renamed.
#[derive(ShmKey)]
#[repr(C)]
struct RelabelledPlayerId {
    shard: u32,
    number: u32,
}

/// `PlayerId` with a field retyped (same size and alignment).
#[derive(ShmKey)]
#[repr(C)]
struct RetypedPlayerId {
    shard: u32,
    id: i32,
}

#[derive(ShmKey, Clone, Copy, PartialEq, Eq, Debug)]
#[repr(transparent)]
struct Tick(u64);

#[derive(ShmValue, Clone, Copy, PartialEq, Debug)]
#[repr(C)]
struct Pair<T>(T, T);

#[derive(ShmKey, Clone, Copy, PartialEq, Eq, Debug)]
#[repr(C)]
struct Grid<const W: usize> {
    cells: [u8; W],
}

/// Explicit padding is accepted.
#[derive(ShmValue)]
#[repr(C)]
struct Padded {
    small: u8,
    _pad: [u8; 7],
    big: u64,
}

/// Every `u8` value is a variant: storable.
#[derive(ShmKey, Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
#[rustfmt::skip]
#[allow(dead_code)]
enum Byte {
    V0, V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12, V13, V14, V15,
    V16, V17, V18, V19, V20, V21, V22, V23, V24, V25, V26, V27, V28, V29, V30, V31,
    V32, V33, V34, V35, V36, V37, V38, V39, V40, V41, V42, V43, V44, V45, V46, V47,
    V48, V49, V50, V51, V52, V53, V54, V55, V56, V57, V58, V59, V60, V61, V62, V63,
    V64, V65, V66, V67, V68, V69, V70, V71, V72, V73, V74, V75, V76, V77, V78, V79,
    V80, V81, V82, V83, V84, V85, V86, V87, V88, V89, V90, V91, V92, V93, V94, V95,
    V96, V97, V98, V99, V100, V101, V102, V103, V104, V105, V106, V107, V108, V109, V110, V111,
    V112, V113, V114, V115, V116, V117, V118, V119, V120, V121, V122, V123, V124, V125, V126, V127,
    V128, V129, V130, V131, V132, V133, V134, V135, V136, V137, V138, V139, V140, V141, V142, V143,
    V144, V145, V146, V147, V148, V149, V150, V151, V152, V153, V154, V155, V156, V157, V158, V159,
    V160, V161, V162, V163, V164, V165, V166, V167, V168, V169, V170, V171, V172, V173, V174, V175,
    V176, V177, V178, V179, V180, V181, V182, V183, V184, V185, V186, V187, V188, V189, V190, V191,
    V192, V193, V194, V195, V196, V197, V198, V199, V200, V201, V202, V203, V204, V205, V206, V207,
    V208, V209, V210, V211, V212, V213, V214, V215, V216, V217, V218, V219, V220, V221, V222, V223,
    V224, V225, V226, V227, V228, V229, V230, V231, V232, V233, V234, V235, V236, V237, V238, V239,
    V240, V241, V242, V243, V244, V245, V246, V247, V248, V249, V250, V251, V252, V253, V254, V255,
}

#[test]
fn descriptions_show_the_structure() {
    assert_eq!(PlayerId::LAYOUT_DESC.as_str(), "{shard:u32@0;id:u32@4}");
    assert_eq!(Tick::LAYOUT_DESC.as_str(), "{0:u64@0}");
    assert_eq!(Pair::<u16>::LAYOUT_DESC.as_str(), "{0:u16@0;1:u16@2}");
    assert_eq!(Grid::<3>::LAYOUT_DESC.as_str(), "{cells:[u8;3]@0}");
    assert_eq!(
        Player::LAYOUT_DESC.to_string(),
        "{id:{shard:u32@0;id:u32@4}@0;pos:{x:f32@0;y:f32@4}@8;gold:u64@16;\
         name:FixedString<14>@24;level:BitsInteger<7>@40;inventory:[u16;4]@48}"
    );
    assert!(Byte::LAYOUT_DESC.as_str().starts_with("enum u8{V0;V1;V2;"));
    assert!(Byte::LAYOUT_DESC.is_truncated());
}

/// The layout hash rules: the type's name and methods are not part of it; field order, names
/// and types are.
#[test]
fn layout_hash_rules() {
    assert_eq!(
        PlayerId::LAYOUT_HASH,
        RenamedPlayerId::LAYOUT_HASH,
        "renaming the type is harmless"
    );
    assert_ne!(PlayerId::LAYOUT_HASH, SwappedPlayerId::LAYOUT_HASH, "swapping fields changes it");
    assert_ne!(
        PlayerId::LAYOUT_HASH,
        RelabelledPlayerId::LAYOUT_HASH,
        "renaming a field changes it"
    );
    assert_ne!(PlayerId::LAYOUT_HASH, RetypedPlayerId::LAYOUT_HASH, "retyping a field changes it");
    assert_ne!(PlayerId::LAYOUT_HASH, <[u32; 2]>::LAYOUT_HASH, "a struct is not an array");
    assert_ne!(Pair::<u32>::LAYOUT_HASH, Pair::<i32>::LAYOUT_HASH);
    assert_ne!(Grid::<3>::LAYOUT_HASH, Grid::<4>::LAYOUT_HASH);
}

/// Pinned: a change to how derived hashes are computed makes every existing segment
/// unreadable, so it must be deliberate (and come with a format version bump).
#[test]
fn derived_layout_hashes_are_pinned() {
    assert_eq!(
        PlayerId::LAYOUT_HASH,
        0xf21d_91a2_2da5_5947,
        "PlayerId: {:#018x}",
        PlayerId::LAYOUT_HASH
    );
    assert_eq!(Player::LAYOUT_HASH, 0x4b79_862e_a1b2_f70a, "Player: {:#018x}", Player::LAYOUT_HASH);
}

#[test]
fn derived_types_live_in_tables() {
    let t = ShmHashTable::<PlayerId, Player>::heap(64).unwrap();
    let id = PlayerId { shard: 1, id: 42 };
    t.visit(&id, AccessMode::CreateIfMiss, |_, p, new| {
        assert!(new);
        p.id = id;
        p.name = FixedString::try_from("alice").unwrap();
        p.level = BitsInteger::new(3).unwrap();
        p.gold += 10;
    })
    .unwrap();
    let p = t.get(&id).unwrap().unwrap();
    assert_eq!((p.name.as_str().unwrap(), p.gold, p.level.get()), ("alice", 10, 3));
    assert_eq!(t.info().key, TypeLayout::of::<PlayerId>());
    assert_eq!(t.info().value.desc.as_str(), Player::LAYOUT_DESC.as_str());

    let names = ShmHashTable::<FixedString<8>, Tick>::heap(8).unwrap();
    let k = FixedString::try_from("bob").unwrap();
    names.visit(&k, AccessMode::CreateIfMiss, |_, t, _| t.0 = 7).unwrap();
    assert_eq!(names.get(&k).unwrap(), Some(Tick(7)));

    let bytes = ShmHashTable::<Byte, Pair<f64>>::heap(8).unwrap();
    bytes.visit(&Byte::V200, AccessMode::CreateIfMiss, |_, p, _| *p = Pair(1.5, 2.5)).unwrap();
    assert_eq!(bytes.get(&Byte::V200).unwrap(), Some(Pair(1.5, 2.5)));
    assert_eq!(size_of::<Padded>(), 16);
    let grids = ShmHashTable::<Grid<3>, u8>::heap(8).unwrap();
    grids.visit(&Grid { cells: [1, 2, 3] }, AccessMode::CreateIfMiss, |_, v, _| *v = 1).unwrap();
}

/// A singleton table, as a server would declare it.
#[shm_table(
    capacity = 1000,
    path = "/shmap-test-derive-scores",
    rollback = true,
    timeout_ms = 250,
    mode = 0o600
)]
struct Scores(PlayerId, u64);

#[shm_table(capacity = 16, file = "/tmp/shmap-test-derive-scores-file.shm")]
struct FileScores(Tick, Position);

#[test]
fn shm_table_generates_a_singleton() {
    assert_eq!((Scores::CAPACITY, Scores::PATH), (1000, "/shmap-test-derive-scores"));
    assert_eq!(
        Scores::LAYOUT_HASH,
        shmap::__private::table_layout_hash(PlayerId::LAYOUT_HASH, u64::LAYOUT_HASH)
    );
    let id = PlayerId { shard: 0, id: 1 };
    let result = std::panic::catch_unwind(|| {
        Scores::get().visit(&id, AccessMode::CreateIfMiss, |_, s, _| *s += 5).unwrap();
        assert!(std::ptr::eq(Scores::get(), Scores::try_get().unwrap()), "one handle per process");
        assert_eq!(Scores::get().get(&id).unwrap(), Some(5));
        assert_eq!(Scores::get().capacity(), 1024);
        assert_eq!(Scores::get().timeout(), std::time::Duration::from_millis(250));
    });
    Scores::destroy().unwrap();
    result.unwrap();

    let _ = FileScores::destroy(); // a leftover from an earlier run
    let t = FileScores::get();
    t.visit(&Tick(1), AccessMode::CreateIfMiss, |_, p, _| p.x = 1.0).unwrap();
    assert!(std::path::Path::new(FileScores::PATH).exists());
    FileScores::destroy().unwrap();
}

#[shm_table(capacity = 16, path = "/shmap-test-derive-mismatch")]
struct Mismatched(u64, u64);

/// `get()` panics, as its documentation says, with a message naming the accessor, the error and
/// the path, when the table cannot be opened (here: the name holds another value layout);
/// `try_get()` returns that error instead, and a later call tries again.
#[test]
fn shm_table_get_panics_with_the_error_and_the_path() {
    let _ = Mismatched::destroy();
    let other = ShmHashTable::<u64, u32>::open_or_create(Mismatched::PATH, 16).unwrap();
    assert!(Mismatched::try_get().is_err());
    let panic = std::panic::catch_unwind(|| Mismatched::get()).unwrap_err();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    other.destroy().unwrap();
    assert!(
        message.starts_with(
            "Mismatched::get(): cannot open shared-memory segment /shmap-test-derive-mismatch: \
             value layout mismatch"
        ) && message.ends_with("(path /shmap-test-derive-mismatch)"),
        "{message}"
    );
    assert_eq!(Mismatched::get().capacity(), 16, "created once the name was free again");
    Mismatched::destroy().unwrap();
}

#[shm_table(
    capacity = 16,
    path = "/shmap-test-derive-tuned",
    undo_records = true,
    adopt_capacity = true,
    hasher = shmap::DefaultHasher
)]
struct Tuned(u64, u64);

/// `undo_records`, `hasher` and `adopt_capacity` reach the table's options: an existing table
/// with more slots (and undo records) is adopted.
#[test]
fn shm_table_takes_undo_records_a_hasher_and_adopts_a_larger_capacity() {
    let _ = Tuned::destroy();
    let bigger = ShmHashTable::<u64, u64>::options()
        .capacity(64)
        .undo_records(true)
        .open(&shmap::Backing::shm(Tuned::PATH))
        .unwrap();
    let result = std::panic::catch_unwind(|| {
        let t: &ShmHashTable<u64, u64, shmap::DefaultHasher> = Tuned::get();
        assert_eq!((t.capacity(), t.undo_records()), (64, true));
    });
    bigger.destroy().unwrap();
    result.unwrap();
}
