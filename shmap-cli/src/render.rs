//! The text form of each command's report (the JSON form is the report serialised).

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use crate::report::{Inspect, Listed, RingState, Stuck, TableState, Who};

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

fn layout_text(l: &crate::report::Layout) -> String {
    if l.desc == "none" {
        return "none".into();
    }
    format!("{} (size {}, align {}, hash {})", l.desc, l.size, l.align, l.hash)
}

fn who(w: &Who) -> String {
    match w.pid {
        Some(pid) => format!("pid {pid} (owner {}) [{}]", w.owner, w.liveness),
        None => format!("owner {} (no process entry) [{}]", w.owner, w.liveness),
    }
}

/// `shmap inspect`.
pub(crate) fn inspect(r: &Inspect) -> String {
    let mut out = String::new();
    let undo = if r.undo_records { ", undo records" } else { "" };
    let unit = if r.table.is_some() { "slots" } else { "cells" };
    let _ = writeln!(out, "segment      {}", r.segment);
    let _ = writeln!(out, "kind         {}", r.kind);
    let _ = writeln!(out, "capacity     {} {unit} x {} bytes{undo}", r.capacity, r.slot_size);
    let _ = writeln!(out, "size         {} bytes (header {})", r.total_size, r.header_size);
    let _ = writeln!(out, "key          {}", layout_text(&r.key));
    let _ = writeln!(out, "value        {}", layout_text(&r.value));
    let _ = writeln!(out, "hasher       {}", r.hasher_id);
    let created = SystemTime::UNIX_EPOCH + Duration::from_secs(r.created_unix);
    let _ = writeln!(
        out,
        "created      {} by pid {} (uid {})",
        utc(created),
        r.creator_pid,
        r.creator_uid
    );
    let _ = writeln!(out, "segment id   {}", r.segment_id);
    let _ = writeln!(out, "recoveries   {} ({} torn)", r.recoveries, r.torn_recoveries);
    if let Some(t) = &r.table {
        table(&mut out, t);
    }
    if let Some(c) = &r.cache {
        let ttl = c.default_ttl_ms.map_or("none".to_owned(), |ms| format!("{ms} ms"));
        let limit =
            c.max_entries.map_or("none".to_owned(), |n| format!("{n} entries ({})", c.policy));
        let _ = writeln!(out, "cache        default TTL {ttl}, limit {limit}");
        let _ = writeln!(out, "reclaimed    {} evicted, {} expired", c.evictions, c.expirations);
    }
    if let Some(ring) = &r.ring {
        ring_text(&mut out, ring);
    }
    let _ = writeln!(out, "processes    {} attached", r.processes.len());
    for p in &r.processes {
        let _ = writeln!(out, "  owner {:<5} pid {:<8} {}", p.owner, p.pid, p.liveness);
    }
    out
}

fn table(out: &mut String, t: &TableState) {
    let s = &t.slots;
    let _ = writeln!(
        out,
        "slots        EMPTY {}, INSERTING {}, NEW {}, READY {}, ACCESSING {}, WRITING {}, \
         FREED {}, EMPTYING {}",
        s.empty, s.inserting, s.new, s.ready, s.accessing, s.writing, s.freed, s.emptying
    );
    let _ = writeln!(
        out,
        "entries      {} (counted {}), {} reusable slots",
        t.entries, t.counted_entries, t.reusable_slots
    );
    match &t.probes {
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

fn ring_text(out: &mut String, r: &RingState) {
    let _ = writeln!(out, "positions    head {}, tail {}", r.head, r.tail);
    if r.roles.is_empty() {
        let _ = writeln!(out, "roles        none held");
    }
    for (i, role) in r.roles.iter().enumerate() {
        let label = if i == 0 { "roles" } else { "" };
        let _ = writeln!(out, "{label:<12} {} held by {}", role.role, who(&role.holder));
    }
    let _ = writeln!(out, "busy cells   {}", r.busy_cells.len());
    for c in &r.busy_cells {
        let _ = writeln!(out, "  cell {} lap {} {} by {}", c.index, c.lap, c.work, who(&c.holder));
    }
    let _ = writeln!(out, "sleepers     {}", r.sleepers.len());
    for s in &r.sleepers {
        let _ = writeln!(out, "  waits for {}: {}", s.waits_for, who(&s.holder));
    }
    if let Some(c) = &r.stats {
        let _ = writeln!(
            out,
            "counters     dropped pushes {}, redelivered {}, takeovers {}, sleepers recovered {}",
            c.dropped_pushes, c.redelivered, c.takeovers, c.sleepers_recovered
        );
    }
    if let Some(n) = r.abandoned {
        let _ = writeln!(out, "abandoned    {n} pushes");
    }
}

/// The reports of one poll of `stuck` or `watch`.
pub(crate) fn stuck(reports: &[Stuck], threshold: Duration) -> String {
    if reports.is_empty() {
        return format!("nothing stuck (threshold {threshold:?})\n");
    }
    let mut out = String::new();
    for r in reports {
        match r {
            Stuck::Slot(s) => {
                let _ = writeln!(
                    out,
                    "slot {} {} for {}ms, held by {}",
                    s.slot,
                    s.state,
                    s.locked_for_ms,
                    who(&s.holder)
                );
                let key_note = if s.key_complete { "" } else { " (may be half-written)" };
                let key = s.key.as_ref().map_or_else(|| spaced(&s.key_hex), |k| k.to_string());
                let _ = writeln!(out, "  key    {key}{key_note}");
                let value_note = match s.state.as_str() {
                    "ACCESSING" => " (committed)",
                    "WRITING" => " (mid-write: may mix old and new words)",
                    _ => " (not yet initialised)",
                };
                let value =
                    s.value.as_ref().map_or_else(|| spaced(&s.value_hex), |v| v.to_string());
                let _ = writeln!(out, "  value  {value}{value_note}");
                if let Some(hex) = &s.undo_hex {
                    let undo = s.undo.as_ref().map_or_else(|| spaced(hex), |u| u.to_string());
                    let _ = writeln!(out, "  undo   {undo} (the value before the visit)");
                }
            }
            Stuck::Cell { cell, held_for_ms } => {
                let _ = writeln!(
                    out,
                    "cell {} {} (lap {}) for {held_for_ms}ms, claimed by {}",
                    cell.index,
                    cell.work,
                    cell.lap,
                    who(&cell.holder)
                );
            }
            Stuck::Role(role) => {
                let _ = writeln!(
                    out,
                    "role {} held by {}: the next claimant takes it over",
                    role.role,
                    who(&role.holder)
                );
            }
            Stuck::Sleeper(s) => {
                let _ = writeln!(
                    out,
                    "sleeper seat (waits for {}) of {}: freed by the ring's next recovery",
                    s.waits_for,
                    who(&s.holder)
                );
            }
        }
    }
    out
}

/// `0200` → `02 00`.
fn spaced(hex: &str) -> String {
    let bytes: Vec<&str> = (0..hex.len()).step_by(2).filter_map(|i| hex.get(i..i + 2)).collect();
    bytes.join(" ")
}

/// `shmap ls`: one line per segment, in columns.
pub(crate) fn listing(entries: &[Listed]) -> String {
    let header = ["SEGMENT", "KIND", "KEY", "VALUE", "CAPACITY", "SIZE", "PROCESSES"];
    let rows: Vec<[String; 7]> = entries
        .iter()
        .map(|e| {
            let dash = || "-".to_owned();
            let processes = match (e.live_processes, e.dead_processes, &e.error) {
                (_, _, Some(error)) => format!("error: {error}"),
                (Some(live), Some(dead), None) => format!("{live} live, {dead} dead"),
                _ => dash(),
            };
            [
                e.segment.clone(),
                e.kind.clone().unwrap_or_else(dash),
                e.key.clone().unwrap_or_else(dash),
                e.value.clone().unwrap_or_else(dash),
                e.capacity.map_or_else(dash, |c| c.to_string()),
                e.size.to_string(),
                processes,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<w$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    out
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

    #[test]
    fn hex_is_spaced_by_byte() {
        assert_eq!(spaced("0200ff"), "02 00 ff");
        assert_eq!(spaced(""), "");
    }
}
