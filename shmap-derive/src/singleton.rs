//! What `#[shm_table]` and `#[shm_ring]` share: parsing `key = value` arguments (unknown and
//! duplicate keys reported at the key), the checks of capacities, names and paths, and where
//! the structure lives.
//!
//! Every argument is checked at compile time with the rules the runtime applies at open time
//! (a POSIX shared-memory name starts with `/`, has no other `/`, and fits `NAME_MAX`), so a
//! typo is a build error rather than a startup failure.

use proc_macro2::{Span, TokenStream};
use quote::quote;

use crate::Stored;
use crate::attr::{Arg, Args, FILE, MODE, PATH, Symbol, TIMEOUT_MS};
use crate::check;
use crate::ctxt::Ctxt;

/// The largest capacity the runtime accepts (2^40 slots or elements): a copy of
/// `shmap::segment::MAX_CAPACITY` (this crate cannot depend on the runtime), pinned to it by
/// the tests below.
pub(crate) const MAX_CAPACITY: u64 = 1 << 40;
/// `NAME_MAX` on Linux: a copy of `shmap::segment::NAME_MAX`, pinned likewise.
const NAME_MAX: usize = 255;

/// Which macro is being expanded, for its messages.
#[derive(Clone, Copy)]
pub(crate) struct Macro {
    /// `shm_table`.
    pub(crate) name: &'static str,
    /// `table`.
    pub(crate) structure: &'static str,
    /// `slot`.
    pub(crate) unit: &'static str,
    /// `a slot`.
    pub(crate) a_unit: &'static str,
    /// The arguments it takes, in the order the documentation lists them.
    pub(crate) keys: &'static [Symbol],
}

/// Where the structure lives.
pub(crate) enum Location {
    Shm(String),
    File(String),
}

/// `path` or `file`, exactly one of them (an invalid one was reported already, and counts as
/// given).
pub(crate) fn location(ctxt: &Ctxt, mac: Macro, args: &Args) -> Option<Location> {
    match (&args.path, &args.file) {
        (path, file) if !path.is_absent() && !file.is_absent() => {
            ctxt.error_at(
                Span::call_site(),
                format!(
                    "`#[{}]` takes `path` (a POSIX shared-memory name) or `file` (a file \
                     path), not both",
                    mac.name
                ),
            );
            None
        }
        (Arg::Valid(path), _) => Some(Location::Shm(path.clone())),
        (_, Arg::Valid(file)) => Some(Location::File(file.clone())),
        (Arg::Invalid, _) | (_, Arg::Invalid) => None,
        (Arg::Absent, Arg::Absent) => {
            ctxt.error_at(
                Span::call_site(),
                format!(
                    "`#[{}]` needs `path = \"/name\"` (a POSIX shared-memory name) or \
                     `file = \"/path/to/{}.shm\"`",
                    mac.name, mac.structure
                ),
            );
            None
        }
    }
}

/// Reports a missing `capacity` (unless something else was already wrong).
pub(crate) fn require_capacity(ctxt: &Ctxt, mac: Macro, capacity: &Arg<u64>) {
    if capacity.valid().is_none() && !ctxt.has_errors() {
        ctxt.error_at(
            Span::call_site(),
            format!(
                "`#[{}]` needs `capacity = N`: the number of {}s (rounded up to a power of two)",
                mac.name, mac.unit
            ),
        );
    }
}

/// A `path = "/name"` value, checked.
pub(crate) fn path(ctxt: &Ctxt, value: &syn::Expr) -> Option<String> {
    string(ctxt, value, PATH).filter(|p| shm_name_ok(ctxt, value, p))
}

/// A `file = "…"` value, checked.
pub(crate) fn file(ctxt: &Ctxt, value: &syn::Expr) -> Option<String> {
    string(ctxt, value, FILE).filter(|f| file_ok(ctxt, value, f))
}

/// A `mode = 0o…` value.
pub(crate) fn mode(ctxt: &Ctxt, value: &syn::Expr) -> Option<u32> {
    integer(ctxt, value, MODE, 0, 0o7777).map(|m| m as u32)
}

/// A `timeout_ms = N` value.
pub(crate) fn timeout_ms(ctxt: &Ctxt, value: &syn::Expr) -> Option<u64> {
    integer(ctxt, value, TIMEOUT_MS, 1, u64::MAX)
}

/// The largest TTL a cache records (shmap's `cache::settings::MAX_TTL_MS`, pinned to it by its
/// tests): 2^40 ms.
pub(crate) const MAX_TTL_MS: u64 = 1 << 40;

/// A `ttl_ms = N` value: an integer literal from 1 to 2^40.
pub(crate) fn ttl_ms(ctxt: &Ctxt, value: &syn::Expr) -> Option<u64> {
    integer_or(
        ctxt,
        value,
        1..=MAX_TTL_MS,
        "`ttl_ms` is the default time to live in milliseconds: an integer literal from 1 to 2^40 \
         (about 35 years), such as `ttl_ms = 60_000`",
    )
}

/// A `read_tick_ms = N` value: an integer literal from 1 to 1000 (shmap's ticker periods,
/// 1 ms to 1 s).
pub(crate) fn read_tick_ms(ctxt: &Ctxt, value: &syn::Expr) -> Option<u64> {
    integer_or(
        ctxt,
        value,
        1..=1000,
        "`read_tick_ms` is how often a thread refreshes the time the cache's reads use \
         (`ReadClock::Ticked`), in milliseconds: an integer literal from 1 to 1000, such as \
         `read_tick_ms = 1`",
    )
}

/// A `max_entries = N` value: an integer literal from 1 (checked against the capacity once
/// both are known).
pub(crate) fn max_entries(ctxt: &Ctxt, value: &syn::Expr) -> Option<u64> {
    integer_or(
        ctxt,
        value,
        1..=u64::MAX,
        "`max_entries` is the number of entries past which the cache evicts: an integer literal \
         from 1 to the capacity, such as `max_entries = 3000`",
    )
}

fn int_literal(value: &syn::Expr) -> Option<&syn::LitInt> {
    match value {
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => Some(i),
        _ => None,
    }
}

/// A `capacity = N` value: an integer literal from 1 to 2^40.
pub(crate) fn capacity(ctxt: &Ctxt, mac: Macro, value: &syn::Expr) -> Option<u64> {
    let Some(lit) = int_literal(value) else {
        ctxt.error_spanned_by(
            value,
            "`capacity` must be an integer literal, such as `capacity = 4096`",
        );
        return None;
    };
    match lit.base10_parse::<u64>() {
        Ok(0) => {
            ctxt.error_spanned_by(
                lit,
                format!("`capacity` must be at least 1: a {} needs {}", mac.structure, mac.a_unit),
            );
            None
        }
        Ok(n) if n > MAX_CAPACITY => {
            ctxt.error_spanned_by(
                lit,
                format!(
                    "`capacity` {n} is above the largest {} (2^40 {}s)",
                    mac.structure, mac.unit
                ),
            );
            None
        }
        Ok(n) => Some(n),
        Err(_) => {
            ctxt.error_spanned_by(lit, "`capacity` does not fit in a u64");
            None
        }
    }
}

pub(crate) fn integer(
    ctxt: &Ctxt,
    value: &syn::Expr,
    key: Symbol,
    min: u64,
    max: u64,
) -> Option<u64> {
    integer_or(
        ctxt,
        value,
        min..=max,
        format!("`{key}` must be an integer literal from {min} to {max}"),
    )
}

/// An integer literal in `range`, or `message` reported at the value.
fn integer_or(
    ctxt: &Ctxt,
    value: &syn::Expr,
    range: std::ops::RangeInclusive<u64>,
    message: impl std::fmt::Display,
) -> Option<u64> {
    match int_literal(value).map(syn::LitInt::base10_parse::<u64>) {
        Some(Ok(n)) if range.contains(&n) => Some(n),
        _ => {
            ctxt.error_spanned_by(value, message);
            None
        }
    }
}

pub(crate) fn boolean(ctxt: &Ctxt, value: &syn::Expr, key: Symbol) -> Option<bool> {
    match value {
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Bool(b), .. }) => Some(b.value),
        _ => {
            ctxt.error_spanned_by(value, format!("`{key}` must be `true` or `false`"));
            None
        }
    }
}

/// A `key = path::To::Type` value: a type given by its path.
pub(crate) fn type_path(ctxt: &Ctxt, value: &syn::Expr, key: Symbol) -> Option<syn::Path> {
    match value {
        syn::Expr::Path(p) if p.qself.is_none() => Some(p.path.clone()),
        _ => {
            ctxt.error_spanned_by(
                value,
                format!(
                    "`{key}` must be a type's path, such as `{key} = shmap::DefaultHasher` (a \
                     type implementing `shmap::ShmHasher`)"
                ),
            );
            None
        }
    }
}

pub(crate) fn string(ctxt: &Ctxt, value: &syn::Expr, key: Symbol) -> Option<String> {
    match value {
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => Some(s.value()),
        _ => {
            ctxt.error_spanned_by(value, format!("`{key}` must be a string literal"));
            None
        }
    }
}

/// The rules of `shmap::Backing::Shm` (and of `shm_open(3)` on Linux), checked at compile time.
fn shm_name_ok(ctxt: &Ctxt, value: &syn::Expr, path: &str) -> bool {
    let problem = shm_name_problem(path);
    if let Some(problem) = problem {
        ctxt.error_spanned_by(value, format!("invalid `path` {path:?}: {problem}"));
    }
    problem.is_none()
}

/// What is wrong with `path` as a POSIX shared-memory name, if anything (the runtime's
/// `Backing::check` applies the same rules; the tests below pin the two together).
fn shm_name_problem(path: &str) -> Option<&'static str> {
    match path.strip_prefix('/') {
        None => Some("a POSIX shared-memory name starts with '/', such as \"/players\""),
        Some("") => Some("the name after '/' is empty"),
        Some(rest) if rest.contains('/') => Some(
            "a POSIX shared-memory name has no '/' after the first; use `file = ...` for a path",
        ),
        Some(rest) if rest.len() > NAME_MAX => {
            Some("the name is longer than NAME_MAX (255 bytes after the '/')")
        }
        Some("." | "..") => Some("'.' and '..' are not object names"),
        Some(rest) if rest.contains('\0') => Some("the name contains a NUL byte"),
        Some(_) => None,
    }
}

fn file_ok(ctxt: &Ctxt, value: &syn::Expr, file: &str) -> bool {
    let problem = if file.is_empty() || file.ends_with('/') {
        Some("the path must end in a file name")
    } else if file.contains('\0') {
        Some("the path contains a NUL byte")
    } else {
        None
    };
    if let Some(problem) = problem {
        ctxt.error_spanned_by(value, format!("invalid `file` {file:?}: {problem}"));
    }
    problem.is_none()
}

/// The derive's checks of the types recognised by name (`String`, `bool`, ...), so that a bad
/// stored type is reported at the type, with its fix, instead of as a bound failure. `role`
/// is `key`, `value` or `element`.
pub(crate) fn check_stored(ctxt: &Ctxt, ty: &syn::Type, stored: Stored, role: &str) {
    if let Some(reason) = check::not_storable(ty, stored) {
        ctxt.error_spanned_by(
            ty,
            format!(
                "the {role} type `{}` {}: {reason}",
                check::type_text(ty),
                check::refusal(&reason)
            ),
        );
    }
}

/// The field types of `struct Name(A, B, ...)` with exactly `N` fields; anything else (a
/// generic struct, named fields, another count, an enum) is reported, with `shape` as the
/// message for a wrong shape.
pub(crate) fn tuple_fields<'a, const N: usize>(
    ctxt: &Ctxt,
    mac: Macro,
    item: &'a syn::DeriveInput,
    shape: &str,
) -> Option<[&'a syn::Type; N]> {
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        ctxt.error_spanned_by(
            &item.generics,
            format!("a `#[{}]` struct cannot be generic: it names one {}", mac.name, mac.structure),
        );
        return None;
    }
    match &item.data {
        syn::Data::Struct(syn::DataStruct { fields: syn::Fields::Unnamed(f), .. })
            if f.unnamed.len() == N =>
        {
            Some(std::array::from_fn(|i| &f.unnamed[i].ty))
        }
        syn::Data::Struct(s) => {
            ctxt.error_spanned_by(&s.fields, shape);
            None
        }
        _ => {
            ctxt.error_spanned_by(&item.ident, shape);
            None
        }
    }
}

/// The items every singleton's `impl` has: `PATH`, `backing()`, `options()` (built by
/// `options`, of type `options_ty`), `try_get()` and `get()` returning `&'static handle`, and
/// `destroy()`.
pub(crate) fn accessors(
    mac: Macro,
    ident: &syn::Ident,
    location: &Location,
    handle: &TokenStream,
    options_ty: &TokenStream,
    options: &TokenStream,
) -> TokenStream {
    let (path, backing, where_doc) = match location {
        Location::Shm(p) => {
            (p, quote!(::shmap::Backing::shm(Self::PATH)), "POSIX shared-memory name")
        }
        Location::File(f) => (f, quote!(::shmap::Backing::file(Self::PATH)), "file path"),
    };
    let structure = mac.structure;
    let path_doc = format!("The {structure}'s {where_doc}: `{path}`.");
    let backing_doc = format!("Where the {structure} lives.");
    let try_get_doc = format!(
        "The {structure}, opened or created on the first successful call in this process; an \
         error is returned (and the next call tries again) if it cannot be opened."
    );
    let get_doc = format!("The {structure}, opened or created on first use in this process.");
    let destroy_doc =
        format!("Removes the {structure}'s name; processes that have it open keep using it.");
    quote! {
        #[doc = #path_doc]
        pub const PATH: &'static str = #path;

        #[doc = #backing_doc]
        pub fn backing() -> ::shmap::Backing {
            #backing
        }

        /// The options `get` opens it with.
        pub fn options() -> #options_ty {
            #options
        }

        #[doc = #try_get_doc]
        pub fn try_get() -> ::core::result::Result<&'static #handle, ::shmap::OpenError> {
            static HANDLE: ::shmap::__private::Singleton<#handle> = ::shmap::__private::Singleton::new();
            HANDLE.get_or_try_init(|| Self::options().open(&Self::backing()))
        }

        #[doc = #get_doc]
        ///
        /// # Panics
        /// If it cannot be opened (the message names the path and the error); use
        /// `try_get` to handle that.
        #[track_caller]
        pub fn get() -> &'static #handle {
            match Self::try_get() {
                ::core::result::Result::Ok(handle) => handle,
                ::core::result::Result::Err(e) => ::core::panic!(
                    "{}::get(): {} (path {})", ::core::stringify!(#ident), e, Self::PATH
                ),
            }
        }

        #[doc = #destroy_doc]
        pub fn destroy() -> ::core::result::Result<(), ::shmap::OpenError> {
            ::shmap::Segment::unlink(&Self::backing())
        }
    }
}

/// The derive cannot depend on the runtime, so its copies of the runtime's limits and name
/// rules are pinned here, where the runtime is a dev-dependency.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_the_runtimes() {
        assert_eq!(MAX_CAPACITY, shmap::segment::MAX_CAPACITY);
        assert_eq!(NAME_MAX, shmap::segment::NAME_MAX);
    }

    #[test]
    fn shm_name_rules_are_the_runtimes() {
        let longest = format!("/{}", "x".repeat(NAME_MAX));
        let too_long = format!("/{}", "x".repeat(NAME_MAX + 1));
        let names = [
            "/players", "players", "/", "/a/b", "/.", "/..", "/...", "/a\0b", "//", "/a b",
            &longest, &too_long,
        ];
        for name in names {
            assert_eq!(
                shm_name_problem(name).is_none(),
                shmap::Backing::shm(name).check().is_ok(),
                "the derive and the runtime disagree on {name:?}"
            );
        }
    }
}
