//! What `inspect`, `stuck` and `watch` print, as text or as JSON.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use shmap::{
    Liveness, Monitor, Occupancy, Segment, SegmentInfo, SlotState, StructureKind, StuckSlot,
    TypeLayout,
};

use crate::json::Json;

/// `2026-11-23 08:55:33 UTC`.
pub(crate) fn utc(time: SystemTime) -> String {
    let secs = time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

fn layout_text(t: &TypeLayout) -> String {
    if t.size == 0 && t.hash == 0 {
        return "none".into();
    }
    format!("{} (size {}, align {}, hash {:#018x})", t.desc, t.size, t.align, t.hash)
}

fn layout_json(t: &TypeLayout) -> Json {
    Json::Object(vec![
        ("desc", Json::Str(t.desc.to_string())),
        ("size", Json::Int(t.size.into())),
        ("align", Json::Int(t.align.into())),
        ("hash", Json::Str(format!("{:#018x}", t.hash))),
    ])
}

/// How a hash table's slots are used.
fn occupancy(segment: &Segment) -> Option<Occupancy> {
    Monitor::for_segment(segment).map(|m| m.occupancy())
}

/// `shmap inspect`.
pub(crate) fn inspect(segment: &Segment, json: bool) -> String {
    let info = segment.info();
    let shmap::segment::Recoveries { total: recoveries, torn } = segment.recoveries();
    let processes: Vec<_> = segment
        .attached_processes()
        .into_iter()
        .map(|(owner, p)| (owner.get(), p.pid, p.liveness()))
        .collect();
    let occupancy = occupancy(segment);
    if json {
        return inspect_json(&info, recoveries, torn, &processes, occupancy.as_ref());
    }
    let mut out = String::new();
    let undo = if info.undo_records() { ", undo records" } else { "" };
    let _ = writeln!(out, "segment      {}", info.backing);
    let _ = writeln!(out, "kind         {}", info.kind);
    let _ = writeln!(out, "capacity     {} slots x {} bytes{undo}", info.capacity, info.slot_size);
    let _ = writeln!(out, "size         {} bytes (header {})", info.total_size, info.header_size);
    let _ = writeln!(out, "key          {}", layout_text(&info.key));
    let _ = writeln!(out, "value        {}", layout_text(&info.value));
    let _ = writeln!(out, "hasher       {:#018x}", info.hasher_id);
    let _ = writeln!(
        out,
        "created      {} by pid {} (uid {})",
        utc(info.created_at),
        info.creator_pid,
        info.creator_uid
    );
    let _ = writeln!(out, "segment id   {:#018x}", info.segment_id);
    let _ = writeln!(out, "recoveries   {recoveries} ({torn} torn)");
    if let Some(o) = &occupancy {
        let line: Vec<String> = o.states.iter().map(|(s, n)| format!("{s} {n}")).collect();
        let _ = writeln!(out, "slots        {}", line.join(", "));
        let _ = writeln!(
            out,
            "entries      {} (counted {}), {} reusable slots",
            o.entries, o.counted, o.reusable
        );
        match o.probes {
            Some(p) => {
                let _ = writeln!(
                    out,
                    "probes       hit mean {:.2} max {}, miss mean {:.2} max {}",
                    p.hit_mean, p.hit_max, p.miss_mean, p.miss_max
                );
            }
            None => {
                let _ = writeln!(out, "probes       unknown (custom hasher)");
            }
        }
    }
    let _ = writeln!(out, "processes    {} attached", processes.len());
    for (owner, pid, liveness) in &processes {
        let _ = writeln!(out, "  owner {owner:<5} pid {pid:<8} {liveness}");
    }
    out
}

fn inspect_json(
    info: &SegmentInfo,
    recoveries: u64,
    torn: u64,
    processes: &[(u16, u32, Liveness)],
    occupancy: Option<&Occupancy>,
) -> String {
    let created = info.created_at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let mut fields = vec![
        ("segment", Json::Str(info.backing.to_string())),
        ("kind", Json::Str(info.kind.to_string())),
        ("capacity", Json::Int(info.capacity)),
        ("slot_size", Json::Int(info.slot_size)),
        ("undo_records", Json::Bool(info.undo_records())),
        ("total_size", Json::Int(info.total_size)),
        ("header_size", Json::Int(info.header_size)),
        ("key", layout_json(&info.key)),
        ("value", layout_json(&info.value)),
        ("hasher_id", Json::Str(format!("{:#018x}", info.hasher_id))),
        ("created_unix", Json::Int(created.as_secs())),
        ("creator_pid", Json::Int(info.creator_pid.into())),
        ("creator_uid", Json::Int(info.creator_uid.into())),
        ("segment_id", Json::Str(format!("{:#018x}", info.segment_id))),
        ("recoveries", Json::Int(recoveries)),
        ("torn_recoveries", Json::Int(torn)),
    ];
    if let Some(o) = occupancy {
        fields.push((
            "slots",
            Json::Object(o.states.iter().map(|(s, n)| (s.name(), Json::Int(*n as u64))).collect()),
        ));
        fields.push(("entries", Json::Int(o.entries as u64)));
        fields.push(("counted_entries", Json::Int(o.counted as u64)));
        fields.push(("reusable_slots", Json::Int(o.reusable as u64)));
        if let Some(p) = o.probes {
            fields.push((
                "probes",
                Json::Object(vec![
                    ("hit_mean", Json::Num(p.hit_mean)),
                    ("hit_max", Json::Int(p.hit_max as u64)),
                    ("miss_mean", Json::Num(p.miss_mean)),
                    ("miss_max", Json::Int(p.miss_max as u64)),
                ]),
            ));
        }
    }
    fields.push((
        "processes",
        Json::Array(
            processes
                .iter()
                .map(|(owner, pid, liveness)| {
                    Json::Object(vec![
                        ("owner", Json::Int((*owner).into())),
                        ("pid", Json::Int((*pid).into())),
                        ("liveness", Json::Str(liveness.to_string())),
                    ])
                })
                .collect(),
        ),
    ));
    Json::Object(fields).render() + "\n"
}

/// The reports of one poll.
pub(crate) fn stuck(reports: &[StuckSlot], threshold: Duration, json: bool) -> String {
    if json {
        return Json::Array(reports.iter().map(stuck_json).collect()).render() + "\n";
    }
    if reports.is_empty() {
        return format!("no stuck slots (threshold {threshold:?})\n");
    }
    let mut out = String::new();
    for r in reports {
        let _ = writeln!(out, "{r}");
        let key_note = if r.key_complete { "" } else { " (may be half-written)" };
        let _ = writeln!(out, "  key    {}{key_note}", hex(&r.key));
        let value_note = match r.state {
            SlotState::Accessing => " (committed)",
            SlotState::Writing => " (mid-write: may mix old and new words)",
            _ => " (not yet initialised)",
        };
        let _ = writeln!(out, "  value  {}{value_note}", hex(&r.value));
        if let Some(undo) = &r.undo {
            let _ = writeln!(out, "  undo   {} (the value before the visit)", hex(undo));
        }
    }
    out
}

fn stuck_json(r: &StuckSlot) -> Json {
    Json::Object(vec![
        ("slot", Json::Int(r.slot as u64)),
        ("state", Json::Str(r.state.name().into())),
        ("owner", r.owner.map_or(Json::Null, |o| Json::Int(o.get().into()))),
        ("pid", r.process.map_or(Json::Null, |p| Json::Int(p.pid.into()))),
        ("liveness", Json::Str(r.liveness.to_string())),
        ("locked_for_ms", Json::Num((r.locked_for.as_secs_f64() * 1e3).round())),
        ("key_hex", Json::Str(hex(&r.key).replace(' ', ""))),
        ("key_complete", Json::Bool(r.key_complete)),
        ("value_hex", Json::Str(hex(&r.value).replace(' ', ""))),
        ("value_committed", Json::Bool(r.value_committed)),
        ("undo_hex", r.undo.as_ref().map_or(Json::Null, |u| Json::Str(hex(u).replace(' ', "")))),
    ])
}

/// Whether the segment holds a structure the monitor understands.
pub(crate) fn is_table(segment: &Segment) -> bool {
    segment.info().kind == StructureKind::HashTable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_430_133);
        assert_eq!(utc(t), "2026-11-23 10:35:33 UTC"); // date -u -d @1795430133
        assert_eq!(utc(SystemTime::UNIX_EPOCH), "1970-01-01 00:00:00 UTC");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(utc(leap), "2000-02-29 00:00:00 UTC");
    }
}
