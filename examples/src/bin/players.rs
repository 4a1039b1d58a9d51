//! Derived types and a `#[shm_table]` singleton, shared by several game-server processes.
//!
//! ```text
//! cargo run --release -p shmap-examples --bin players [-- SERVERS ROUNDS]
//! ```
//!
//! The parent starts `SERVERS` copies of this program (default 3). Each reaches the same table
//! through `Players::get()`: it registers a few players of its own shard, then plays `ROUNDS`
//! rounds (default 20,000) in which random players from every shard gain gold and levels. The
//! parent then prints the leaderboard with `travel`, checks that no gold was lost, and removes
//! the table.

use std::process::{Command, ExitCode};

use shmap::{AccessMode, BitsInteger, FixedString, ShmKey, ShmValue, shm_table};

/// Who a player is: the server shard that created them and their number there.
#[derive(ShmKey, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
struct PlayerId {
    shard: u16,
    number: u16,
}

/// What the table keeps about a player.
#[derive(ShmValue, Clone, Copy, Debug)]
#[repr(C)]
struct Player {
    name: FixedString<14>,
    level: BitsInteger<7>, // 0..=127
    gold: u64,
    wins: u32,
    _pad: [u8; 4], // explicit: a derived type may not have hidden padding
}

/// Every process that names `Players` shares this one table.
#[shm_table(capacity = 256, path = "/shmap-example-players", timeout_ms = 1000)]
struct Players(PlayerId, Player);

const PER_SHARD: u16 = 4;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("server") => server(&args[2..]),
        _ => parent(&args[1..]),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn number(args: &[String], i: usize, default: u64) -> Result<u64, String> {
    args.get(i).map_or(Ok(default), |s| s.parse().map_err(|_| format!("not a number: {s}")))
}

fn parent(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let servers = number(args, 0, 3)?.clamp(1, 60) as u16;
    let rounds = number(args, 1, 20_000)?;
    let _ = Players::destroy(); // a table left by an interrupted run
    let table = Players::get();
    println!(
        "table {}: {} slots of {} bytes; key {}, value {}",
        Players::PATH,
        table.capacity(),
        table.info().slot_size,
        table.info().key.desc,
        table.info().value.desc
    );
    let exe = std::env::current_exe()?;
    let children: Vec<_> = (0..servers)
        .map(|shard| {
            let args = ["server", &shard.to_string(), &servers.to_string(), &rounds.to_string()];
            Command::new(&exe).args(args).spawn()
        })
        .collect::<Result<_, _>>()?;
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("a server failed: {status}").into());
        }
    }

    let mut board = Vec::new();
    let outcome = table.travel(|_, id, p| board.push((*id, *p)))?;
    if !outcome.is_completed() {
        return Err(format!("travel did not complete: {outcome:?}").into());
    }
    board.sort_by_key(|(_, p)| std::cmp::Reverse(p.gold));
    println!("leaderboard:");
    for (id, p) in board.iter().take(5) {
        println!(
            "  {:<10} shard {} #{}: level {:>3}, {:>6} gold, {} wins",
            p.name, id.shard, id.number, p.level, p.gold, p.wins
        );
    }
    let gold: u64 = board.iter().map(|(_, p)| p.gold).sum();
    let expected = u64::from(servers) * (rounds * 10 + u64::from(PER_SHARD) * 100);
    println!("{} players hold {gold} gold (expected {expected})", board.len());
    Players::destroy()?;
    if gold != expected {
        return Err("gold was lost".into());
    }
    Ok(())
}

fn server(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let shard = number(args, 0, 0)? as u16;
    let shards = number(args, 1, 1)?.max(1) as u16;
    let rounds = number(args, 2, 20_000)?;
    let table = Players::get();
    for number in 0..PER_SHARD {
        let name = FixedString::try_from(format!("p{shard}-{number}").as_str())?;
        table.visit(&PlayerId { shard, number }, AccessMode::CreateIfMiss, |_, p, is_new| {
            if is_new {
                p.name = name;
                p.level = BitsInteger::new(1).expect("1 fits in 7 bits");
                p.gold = 100;
            }
        })?;
    }
    // Rounds: a random player of a random shard wins 10 gold, and a level every 100 wins.
    let (mut state, mut missing) = (u64::from(shard) + 1, 0);
    for _ in 0..rounds {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let winner = PlayerId {
            shard: (state >> 33) as u16 % shards,
            number: (state >> 17) as u16 % PER_SHARD,
        };
        let found = table.visit(&winner, AccessMode::AccessExist, |_, p, _| {
            p.gold += 10;
            p.wins += 1;
            if p.wins % 100 == 0 {
                p.level = p.level.checked_add(1).unwrap_or(p.level);
            }
        })?;
        if !found.ran() {
            // That shard's server has not registered its players yet: credit our own instead.
            missing += 1;
            let own = PlayerId { shard, number: winner.number };
            table.visit(&own, AccessMode::AccessExist, |_, p, _| p.gold += 10)?;
        }
    }
    println!(
        "server {shard} (pid {}): {rounds} rounds, {missing} winners not registered yet",
        std::process::id()
    );
    Ok(())
}
