//! `#[shm_table(capacity = 4096, path = "/players")]` on `pub struct Players(PlayerId, Player);`
//! becomes a typed singleton: `Players::get()` returns a `&'static ShmHashTable<PlayerId,
//! Player>`, opened (or created) once per process.
//!
//! Every argument is checked at compile time, with the rules the runtime applies at open time
//! (a POSIX shared-memory name starts with `/`, has no other `/`, and fits `NAME_MAX`), so a
//! typo is a build error rather than a startup failure.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::parse::Parser;
use syn::spanned::Spanned;

use crate::Stored;
use crate::check;
use crate::ctxt::Ctxt;

/// The argument names, in the order the documentation lists them.
const KEYS: [&str; 6] = ["capacity", "path", "file", "rollback", "timeout_ms", "mode"];
/// The largest capacity the runtime accepts (2^40 slots).
const MAX_CAPACITY: u64 = 1 << 40;
/// `NAME_MAX` on Linux.
const NAME_MAX: usize = 255;

/// Where the table lives.
enum Location {
    Shm(String),
    File(String),
}

/// The parsed arguments; `path` and `file` are `Some(None)` when given but invalid (already
/// reported), so that their absence is not reported too.
#[derive(Default)]
struct Args {
    capacity: Option<u64>,
    path: Option<Option<String>>,
    file: Option<Option<String>>,
    rollback: Option<bool>,
    timeout_ms: Option<u64>,
    mode: Option<u32>,
}

/// Parses, checks and expands the attribute.
pub(crate) fn expand(args: TokenStream, item: &syn::DeriveInput) -> syn::Result<TokenStream> {
    let ctxt = Ctxt::new();
    let parsed = parse_args(&ctxt, args);
    let types = parse_item(&ctxt, item);
    if let Some((key, value)) = types {
        check_stored(&ctxt, key, Stored::Key);
        check_stored(&ctxt, value, Stored::Value);
    }
    let location = match (&parsed.path, &parsed.file) {
        (Some(_), Some(_)) => {
            ctxt.error_at(
                Span::call_site(),
                "`#[shm_table]` takes `path` (a POSIX shared-memory name) or `file` (a file \
                 path), not both",
            );
            None
        }
        (Some(p), None) => p.clone().map(Location::Shm),
        (None, Some(f)) => f.clone().map(Location::File),
        (None, None) => {
            ctxt.error_at(
                Span::call_site(),
                "`#[shm_table]` needs `path = \"/name\"` (a POSIX shared-memory name) or \
                 `file = \"/path/to/table.shm\"`",
            );
            None
        }
    };
    if parsed.capacity.is_none() && !ctxt.has_errors() {
        ctxt.error_at(
            Span::call_site(),
            "`#[shm_table]` needs `capacity = N`: the number of slots (rounded up to a power of two)",
        );
    }
    ctxt.check()?;
    let (Some((key, value)), Some(location), Some(capacity)) = (types, location, parsed.capacity)
    else {
        unreachable!("every missing part was reported");
    };
    Ok(generate(item, key, value, &location, capacity, &parsed))
}

fn parse_args(ctxt: &Ctxt, args: TokenStream) -> Args {
    let mut out = Args::default();
    let mut seen: Vec<String> = Vec::new();
    let parser = syn::meta::parser(|meta| {
        let name = meta.path.get_ident().map(ToString::to_string).unwrap_or_default();
        let value: syn::Expr = meta.value()?.parse()?;
        if !KEYS.contains(&name.as_str()) {
            ctxt.error_spanned_by(
                &meta.path,
                format!(
                    "unknown `#[shm_table]` key `{name}`; expected one of: {}",
                    KEYS.join(", ")
                ),
            );
            return Ok(());
        }
        if seen.contains(&name) {
            ctxt.error_spanned_by(&meta.path, format!("duplicate `#[shm_table]` key `{name}`"));
            return Ok(());
        }
        seen.push(name.clone());
        match name.as_str() {
            "capacity" => out.capacity = capacity(ctxt, &value),
            "path" => {
                out.path =
                    Some(string(ctxt, &value, "path").filter(|p| shm_name_ok(ctxt, &value, p)))
            }
            "file" => {
                out.file = Some(string(ctxt, &value, "file").filter(|f| file_ok(ctxt, &value, f)))
            }
            "rollback" => out.rollback = boolean(ctxt, &value),
            "timeout_ms" => out.timeout_ms = integer(ctxt, &value, "timeout_ms", 1, u64::MAX),
            "mode" => {
                out.mode = integer(ctxt, &value, "mode", 0, 0o7777).map(|m| m as u32);
            }
            _ => unreachable!("checked against KEYS"),
        }
        Ok(())
    });
    if let Err(e) = parser.parse2(args) {
        ctxt.push(e);
    }
    out
}

fn int_literal(value: &syn::Expr) -> Option<&syn::LitInt> {
    match value {
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => Some(i),
        _ => None,
    }
}

fn capacity(ctxt: &Ctxt, value: &syn::Expr) -> Option<u64> {
    let Some(lit) = int_literal(value) else {
        ctxt.error_spanned_by(
            value,
            "`capacity` must be an integer literal, such as `capacity = 4096`",
        );
        return None;
    };
    match lit.base10_parse::<u64>() {
        Ok(0) => {
            ctxt.error_spanned_by(lit, "`capacity` must be at least 1: a table needs a slot");
            None
        }
        Ok(n) if n > MAX_CAPACITY => {
            ctxt.error_spanned_by(
                lit,
                format!("`capacity` {n} is above the largest table (2^40 slots)"),
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

fn integer(ctxt: &Ctxt, value: &syn::Expr, key: &str, min: u64, max: u64) -> Option<u64> {
    match int_literal(value).map(syn::LitInt::base10_parse::<u64>) {
        Some(Ok(n)) if (min..=max).contains(&n) => Some(n),
        _ => {
            ctxt.error_spanned_by(
                value,
                format!("`{key}` must be an integer literal from {min} to {max}"),
            );
            None
        }
    }
}

fn boolean(ctxt: &Ctxt, value: &syn::Expr) -> Option<bool> {
    match value {
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Bool(b), .. }) => Some(b.value),
        _ => {
            ctxt.error_spanned_by(value, "`rollback` must be `true` or `false`");
            None
        }
    }
}

fn string(ctxt: &Ctxt, value: &syn::Expr, key: &str) -> Option<String> {
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
    let problem = match path.strip_prefix('/') {
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
    };
    if let Some(problem) = problem {
        ctxt.error_spanned_by(value, format!("invalid `path` {path:?}: {problem}"));
    }
    problem.is_none()
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
/// key or value type is reported at the type, with its fix, instead of as a bound failure.
fn check_stored(ctxt: &Ctxt, ty: &syn::Type, stored: Stored) {
    if let Some(reason) = check::not_storable(ty, stored) {
        let role = if stored == Stored::Key { "key" } else { "value" };
        ctxt.error_spanned_by(
            ty,
            format!(
                "the {role} type `{}` cannot live in shared memory: {reason}",
                check::type_text(ty)
            ),
        );
    }
}

/// The key and value types of `struct Name(Key, Value);`.
fn parse_item<'a>(
    ctxt: &Ctxt,
    item: &'a syn::DeriveInput,
) -> Option<(&'a syn::Type, &'a syn::Type)> {
    let shape_error = |tokens: &dyn quote::ToTokens| {
        ctxt.error_spanned_by(
            tokens.to_token_stream(),
            "`#[shm_table]` expects `struct Name(KeyType, ValueType);`, such as \
             `pub struct Players(PlayerId, Player);`",
        );
    };
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        ctxt.error_spanned_by(
            &item.generics,
            "a `#[shm_table]` struct cannot be generic: it names one table",
        );
        return None;
    }
    match &item.data {
        syn::Data::Struct(syn::DataStruct { fields: syn::Fields::Unnamed(f), .. })
            if f.unnamed.len() == 2 =>
        {
            Some((&f.unnamed[0].ty, &f.unnamed[1].ty))
        }
        syn::Data::Struct(s) => {
            shape_error(&s.fields);
            None
        }
        _ => {
            shape_error(&item.ident);
            None
        }
    }
}

fn generate(
    item: &syn::DeriveInput,
    key: &syn::Type,
    value: &syn::Type,
    location: &Location,
    capacity: u64,
    args: &Args,
) -> TokenStream {
    let attrs = &item.attrs;
    let vis = &item.vis;
    let ident = &item.ident;
    let capacity = capacity as usize;
    let (path, backing, where_doc) = match location {
        Location::Shm(p) => {
            (p, quote!(::shmap::Backing::shm(Self::PATH)), "POSIX shared-memory name")
        }
        Location::File(f) => (f, quote!(::shmap::Backing::file(Self::PATH)), "file path"),
    };
    let rollback = args.rollback.map(|r| quote!(.rollback(#r)));
    let timeout =
        args.timeout_ms.map(|ms| quote!(.timeout(::core::time::Duration::from_millis(#ms))));
    let mode = args.mode.map(|m| quote!(.mode(#m)));
    let table = quote!(::shmap::ShmHashTable<#key, #value>);
    let path_doc = format!("The table's {where_doc}: `{path}`.");
    // Written here rather than interpolated, so an unsatisfied bound is reported at the type.
    let key_bound = quote_spanned!(key.span()=> #key: ::shmap::ShmKey);
    let value_bound = quote_spanned!(value.span()=> #value: ::shmap::ShmValue);
    quote! {
        #(#attrs)*
        #vis struct #ident {
            _private: (),
        }

        #[automatically_derived]
        impl #ident where #key_bound, #value_bound {
            /// The number of slots requested (rounded up to a power of two at creation).
            pub const CAPACITY: usize = #capacity;
            #[doc = #path_doc]
            pub const PATH: &'static str = #path;
            /// The layout hash of the key and value types together (the segment header records
            /// each; an opener with other layouts is refused).
            pub const LAYOUT_HASH: u64 = ::shmap::__private::table_layout_hash(
                <#key as ::shmap::ShmLayout>::LAYOUT_HASH,
                <#value as ::shmap::ShmLayout>::LAYOUT_HASH,
            );

            /// Where the table lives.
            pub fn backing() -> ::shmap::Backing {
                #backing
            }

            /// The options `get` opens the table with.
            pub fn options() -> ::shmap::TableOptions<#key, #value> {
                ::shmap::ShmHashTable::<#key, #value>::options().capacity(Self::CAPACITY) #rollback #timeout #mode
            }

            /// The table, opened or created on the first successful call in this process; an
            /// error is returned (and the next call tries again) if it cannot be opened.
            pub fn try_get() -> ::core::result::Result<&'static #table, ::shmap::OpenError> {
                static TABLE: ::shmap::__private::Singleton<#table> = ::shmap::__private::Singleton::new();
                TABLE.get_or_try_init(|| Self::options().open(&Self::backing()))
            }

            /// The table, opened or created on first use in this process.
            ///
            /// # Panics
            /// If it cannot be opened (the message names the path and the error); use
            /// `try_get` to handle that.
            #[track_caller]
            pub fn get() -> &'static #table {
                match Self::try_get() {
                    ::core::result::Result::Ok(table) => table,
                    ::core::result::Result::Err(e) => ::core::panic!(
                        "{}::get(): {} (path {})", ::core::stringify!(#ident), e, Self::PATH
                    ),
                }
            }

            /// Removes the table's name; processes that have it open keep using it.
            pub fn destroy() -> ::core::result::Result<(), ::shmap::OpenError> {
                ::shmap::Segment::unlink(&Self::backing())
            }
        }
    }
}
