//! `#[shm_table(capacity = 4096, path = "/players")]` on `pub struct Players(PlayerId, Player);`
//! becomes a typed singleton: `Players::get()` returns a `&'static ShmHashTable<PlayerId,
//! Player>`, opened (or created) once per process. The arguments are checked by `singleton`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::Stored;
use crate::ctxt::Ctxt;
use crate::singleton::{self, Location, Macro};

const SHM_TABLE: Macro = Macro {
    name: "shm_table",
    structure: "table",
    unit: "slot",
    a_unit: "a slot",
    keys: &["capacity", "path", "file", "rollback", "timeout_ms", "mode"],
};

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
        singleton::check_stored(&ctxt, key, Stored::Key, "key");
        singleton::check_stored(&ctxt, value, Stored::Value, "value");
    }
    let location = singleton::location(&ctxt, SHM_TABLE, &parsed.path, &parsed.file);
    singleton::require_capacity(&ctxt, SHM_TABLE, parsed.capacity);
    ctxt.check()?;
    let (Some((key, value)), Some(location), Some(capacity)) = (types, location, parsed.capacity)
    else {
        unreachable!("every missing part was reported");
    };
    Ok(generate(item, key, value, &location, capacity, &parsed))
}

fn parse_args(ctxt: &Ctxt, args: TokenStream) -> Args {
    let mut out = Args::default();
    singleton::parse_keys(ctxt, SHM_TABLE, args, |key, value| match key {
        "capacity" => out.capacity = singleton::capacity(ctxt, SHM_TABLE, value),
        "path" => out.path = singleton::path(ctxt, value),
        "file" => out.file = singleton::file(ctxt, value),
        "rollback" => out.rollback = singleton::boolean(ctxt, value, "rollback"),
        "timeout_ms" => out.timeout_ms = singleton::timeout_ms(ctxt, value),
        "mode" => out.mode = singleton::mode(ctxt, value),
        _ => unreachable!("checked against the keys"),
    });
    out
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
    if !singleton::not_generic(ctxt, SHM_TABLE, item) {
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
