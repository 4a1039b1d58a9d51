//! Build 2 of the two-build layout check (`tests/two_builds.rs`): order numbers became `i32`,
//! which has the same size and alignment, so only the layout hash can tell the builds apart.

type OrderNumber = i32;

include!("../schema_common.rs");
