//! Procedural macros for [`shmap`](https://docs.rs/shmap); use them through `shmap`, which
//! re-exports them.
//!
//! - `#[derive(ShmKey)]` and `#[derive(ShmValue)]` check at compile time that a type may live in
//!   shared memory (`#[repr(C)]` or `#[repr(transparent)]`, storable fields, no padding, no
//!   invalid bit patterns) and implement `shmap::ShmLayout` with a layout hash that the segment
//!   header records. A key type is also a value type: derive one of them, not both.
//! - `#[shm_table(capacity = …, path = "/…")]` turns `struct Name(Key, Value);` into a typed
//!   singleton handle: `Name::get()`; `#[shm_ring(capacity = …, path = "/…", kind = "…")]` does
//!   the same for `struct Name(Element);` and a ring. `singleton` has what the two share.
//!
//! The structure follows serde_derive: `ast` parses the input into a typed model keeping the
//! original tokens for spans, `check` applies one function per rule and collects every error in
//! a `ctxt::Ctxt`, and `expand` (or `table`, `ring`) generates code inside `const _: () = { … };`.

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;
mod repr;
mod ring;
mod singleton;
mod table;

use proc_macro::TokenStream;

/// Which trait a derive implements.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stored {
    /// `ShmKey` (and `ShmValue`): fields must be keys (no floats).
    Key,
    /// `ShmValue`: fields must be values.
    Value,
}

/// Derives `shmap::ShmLayout`, `shmap::ShmKey` and `shmap::ShmValue` for a `#[repr(C)]` struct
/// of key fields (integers, arrays, `FixedString`, other keys), or a fieldless enum whose
/// variants cover every value of its `#[repr(u8)]`/`#[repr(i8)]`.
#[proc_macro_derive(ShmKey)]
pub fn derive_shm_key(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::derive(&input, Stored::Key).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Derives `shmap::ShmLayout` and `shmap::ShmValue` for a `#[repr(C)]` struct of value fields
/// (integers, floats, arrays, `FixedString`, other values), or such an enum.
#[proc_macro_derive(ShmValue)]
pub fn derive_shm_value(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::derive(&input, Stored::Value).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Turns `struct Name(Key, Value);` into a typed singleton for a shared-memory hash table.
///
/// Keys: `capacity = N` (required), `path = "/name"` (POSIX shm) or `file = "/a/b.shm"`, and
/// optionally `rollback = bool`, `timeout_ms = N`, `mode = 0o600`, `undo_records = bool`,
/// `hasher = path::To::Hasher` and `adopt_capacity = bool`. With `ttl_ms = N` (a default time
/// to live) or `max_entries = N` (at most the capacity), the handle is a `ShmCache` with those
/// settings, and `read_tick_ms = N` (1 to 1000) makes its reads use a ticked clock
/// (`ReadClock::Ticked`).
#[proc_macro_attribute]
pub fn shm_table(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = syn::parse_macro_input!(item as syn::DeriveInput);
    table::expand(args.into(), &item).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Turns `struct Name(Element);` into a typed singleton for a shared-memory ring.
///
/// Keys: `capacity = N` and `kind = "spsc" | "spmc" | "mpmc" | "broadcast"` (required),
/// `path = "/name"` (POSIX shm) or `file = "/a/b.shm"`, and optionally `timeout_ms = N`,
/// `mode = 0o600`.
#[proc_macro_attribute]
pub fn shm_ring(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = syn::parse_macro_input!(item as syn::DeriveInput);
    ring::expand(args.into(), &item).unwrap_or_else(syn::Error::into_compile_error).into()
}
