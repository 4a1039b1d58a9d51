//! The arguments of `#[shm_table]` and `#[shm_ring]`: their names as [`Symbol`] constants and
//! one parsed type, [`Args`], filled by one parser (after serde_derive's `internals/symbol.rs`
//! and `internals/attr.rs`). Each value is checked as it is parsed (by `singleton`), and an
//! error is reported at the key or the value that caused it.

use proc_macro2::TokenStream;
use syn::parse::Parser;

use crate::ctxt::Ctxt;
use crate::singleton::{self, Macro};

/// The name of an argument.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Symbol(pub(crate) &'static str);

impl std::fmt::Display for Symbol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

pub(crate) const CAPACITY: Symbol = Symbol("capacity");
pub(crate) const PATH: Symbol = Symbol("path");
pub(crate) const FILE: Symbol = Symbol("file");
pub(crate) const ROLLBACK: Symbol = Symbol("rollback");
pub(crate) const TIMEOUT_MS: Symbol = Symbol("timeout_ms");
pub(crate) const MODE: Symbol = Symbol("mode");
pub(crate) const KIND: Symbol = Symbol("kind");
pub(crate) const UNDO_RECORDS: Symbol = Symbol("undo_records");
pub(crate) const HASHER: Symbol = Symbol("hasher");
pub(crate) const ADOPT_CAPACITY: Symbol = Symbol("adopt_capacity");
pub(crate) const TTL_MS: Symbol = Symbol("ttl_ms");
pub(crate) const MAX_ENTRIES: Symbol = Symbol("max_entries");
pub(crate) const READ_TICK_MS: Symbol = Symbol("read_tick_ms");

/// One argument: not given, given and valid, or given but invalid (already reported, so that
/// its absence is not reported too).
#[derive(Clone, Debug, Default)]
pub(crate) enum Arg<T> {
    #[default]
    Absent,
    Valid(T),
    Invalid,
}

impl<T> Arg<T> {
    fn from_checked(checked: Option<T>) -> Self {
        checked.map_or(Arg::Invalid, Arg::Valid)
    }

    /// The value, if it was given and valid.
    pub(crate) fn valid(&self) -> Option<&T> {
        match self {
            Arg::Valid(value) => Some(value),
            Arg::Absent | Arg::Invalid => None,
        }
    }

    pub(crate) fn is_absent(&self) -> bool {
        matches!(self, Arg::Absent)
    }
}

/// Every argument either macro takes; a macro's [`Macro::keys`] says which it accepts.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) capacity: Arg<u64>,
    pub(crate) path: Arg<String>,
    pub(crate) file: Arg<String>,
    pub(crate) rollback: Arg<bool>,
    pub(crate) timeout_ms: Arg<u64>,
    pub(crate) mode: Arg<u32>,
    /// `kind = "spmc"`, as the ring type it names (`SpmcRing`).
    pub(crate) kind: Arg<&'static str>,
    pub(crate) undo_records: Arg<bool>,
    /// `hasher = path::To::Hasher`: a type path.
    pub(crate) hasher: Arg<syn::Path>,
    pub(crate) adopt_capacity: Arg<bool>,
    /// A cache's default time to live, in milliseconds.
    pub(crate) ttl_ms: Arg<u64>,
    /// A cache's entry limit, and where it was written (checked against the capacity once
    /// both are parsed).
    pub(crate) max_entries: Arg<u64>,
    pub(crate) max_entries_span: Option<proc_macro2::Span>,
    /// A cache's ticked read clock period, in milliseconds, and where it was written (an
    /// error there if the handle is not a cache).
    pub(crate) read_tick_ms: Arg<u64>,
    pub(crate) read_tick_ms_span: Option<proc_macro2::Span>,
}

/// Parses `key = value, …` for `mac`, reporting unknown and duplicate keys at the key, and
/// checking each value.
pub(crate) fn parse(ctxt: &Ctxt, mac: Macro, tokens: TokenStream) -> Args {
    let mut args = Args::default();
    let mut seen: Vec<Symbol> = Vec::new();
    let parser = syn::meta::parser(|meta| {
        let name = meta.path.get_ident().map(ToString::to_string).unwrap_or_default();
        let value: syn::Expr = meta.value()?.parse()?;
        let Some(&key) = mac.keys.iter().find(|key| key.0 == name) else {
            let expected: Vec<&str> = mac.keys.iter().map(|key| key.0).collect();
            ctxt.error_spanned_by(
                &meta.path,
                format!(
                    "unknown `#[{}]` key `{name}`; expected one of: {}",
                    mac.name,
                    expected.join(", ")
                ),
            );
            return Ok(());
        };
        if seen.contains(&key) {
            ctxt.error_spanned_by(&meta.path, format!("duplicate `#[{}]` key `{name}`", mac.name));
            return Ok(());
        }
        seen.push(key);
        set(ctxt, mac, &mut args, key, &value);
        Ok(())
    });
    if let Err(e) = parser.parse2(tokens) {
        ctxt.push(e);
    }
    args
}

/// Checks `value` as the value of `key` and stores it.
fn set(ctxt: &Ctxt, mac: Macro, args: &mut Args, key: Symbol, value: &syn::Expr) {
    match key {
        CAPACITY => args.capacity = Arg::from_checked(singleton::capacity(ctxt, mac, value)),
        PATH => args.path = Arg::from_checked(singleton::path(ctxt, value)),
        FILE => args.file = Arg::from_checked(singleton::file(ctxt, value)),
        ROLLBACK => {
            args.rollback = Arg::from_checked(singleton::boolean(ctxt, value, ROLLBACK));
        }
        TIMEOUT_MS => args.timeout_ms = Arg::from_checked(singleton::timeout_ms(ctxt, value)),
        MODE => args.mode = Arg::from_checked(singleton::mode(ctxt, value)),
        KIND => args.kind = Arg::from_checked(crate::ring::ring_type(ctxt, value)),
        UNDO_RECORDS => {
            args.undo_records = Arg::from_checked(singleton::boolean(ctxt, value, UNDO_RECORDS));
        }
        HASHER => args.hasher = Arg::from_checked(singleton::type_path(ctxt, value, HASHER)),
        ADOPT_CAPACITY => {
            args.adopt_capacity =
                Arg::from_checked(singleton::boolean(ctxt, value, ADOPT_CAPACITY));
        }
        TTL_MS => args.ttl_ms = Arg::from_checked(singleton::ttl_ms(ctxt, value)),
        MAX_ENTRIES => {
            args.max_entries_span = Some(syn::spanned::Spanned::span(value));
            args.max_entries = Arg::from_checked(singleton::max_entries(ctxt, value));
        }
        READ_TICK_MS => {
            args.read_tick_ms_span = Some(syn::spanned::Spanned::span(value));
            args.read_tick_ms = Arg::from_checked(singleton::read_tick_ms(ctxt, value));
        }
        Symbol(other) => unreachable!("`{other}` is not an argument of any macro"),
    }
}
