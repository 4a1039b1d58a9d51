// Accepted: nested derived structs, arrays, FixedString, BitsInteger, generics, a tuple struct,
// a full enum, and a #[shm_table] whose types are derived.
use shmap::{BitsInteger, FixedString, ShmKey, ShmValue};

#[derive(ShmKey)]
#[repr(C)]
struct Id {
    shard: u16,
    kind: u16,
    serial: u32,
}

#[derive(ShmValue)]
#[repr(C)]
struct Stats<T> {
    samples: [T; 4],
    count: u64,
}

#[derive(ShmValue)]
#[repr(C)]
struct Record {
    id: Id,
    name: FixedString<22>,
    level: BitsInteger<7>,
    stats: Stats<u64>,
    ratio: f64,
}

#[derive(ShmKey)]
#[repr(transparent)]
struct Tick(u64);

#[derive(ShmValue)]
#[repr(i8)]
#[allow(dead_code)]
enum Sign {
    Z0 = 0, P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12, P13, P14, P15, P16, P17, P18, P19,
    P20, P21, P22, P23, P24, P25, P26, P27, P28, P29, P30, P31, P32, P33, P34, P35, P36, P37, P38,
    P39, P40, P41, P42, P43, P44, P45, P46, P47, P48, P49, P50, P51, P52, P53, P54, P55, P56, P57,
    P58, P59, P60, P61, P62, P63, P64, P65, P66, P67, P68, P69, P70, P71, P72, P73, P74, P75, P76,
    P77, P78, P79, P80, P81, P82, P83, P84, P85, P86, P87, P88, P89, P90, P91, P92, P93, P94, P95,
    P96, P97, P98, P99, P100, P101, P102, P103, P104, P105, P106, P107, P108, P109, P110, P111,
    P112, P113, P114, P115, P116, P117, P118, P119, P120, P121, P122, P123, P124, P125, P126, P127,
    N128 = -128, N127, N126, N125, N124, N123, N122, N121, N120, N119, N118, N117, N116, N115, N114,
    N113, N112, N111, N110, N109, N108, N107, N106, N105, N104, N103, N102, N101, N100, N99, N98,
    N97, N96, N95, N94, N93, N92, N91, N90, N89, N88, N87, N86, N85, N84, N83, N82, N81, N80, N79,
    N78, N77, N76, N75, N74, N73, N72, N71, N70, N69, N68, N67, N66, N65, N64, N63, N62, N61, N60,
    N59, N58, N57, N56, N55, N54, N53, N52, N51, N50, N49, N48, N47, N46, N45, N44, N43, N42, N41,
    N40, N39, N38, N37, N36, N35, N34, N33, N32, N31, N30, N29, N28, N27, N26, N25, N24, N23, N22,
    N21, N20, N19, N18, N17, N16, N15, N14, N13, N12, N11, N10, N9, N8, N7, N6, N5, N4, N3, N2, N1,
}

#[shmap::shm_table(capacity = 4096, path = "/ui-pass-records")]
struct Records(Id, Record);

fn main() {
    let _ = (Records::CAPACITY, Records::PATH, Records::LAYOUT_HASH);
    let _ = shmap::ShmHashTable::<Tick, Sign>::heap(4);
}
