//! Build 1 of the two-build layout check (`tests/two_builds.rs`): order numbers are `u32`.

type OrderNumber = u32;

include!("../schema_common.rs");
