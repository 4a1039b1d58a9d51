//! `#[shm_table(capacity = 4096, path = "/players")]` on `pub struct Players(PlayerId, Player);`
//! becomes a typed singleton: `Players::get()` returns a `&'static ShmHashTable<PlayerId,
//! Player>`, opened (or created) once per process. With `ttl_ms = …` or `max_entries = …` it is a
//! `&'static ShmCache<PlayerId, Player>` with those settings. The arguments are checked by
//! `singleton`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::Stored;
use crate::attr::{
    self, ADOPT_CAPACITY, Args, CAPACITY, FILE, HASHER, MAX_ENTRIES, MODE, PATH, READ_TICK_MS,
    ROLLBACK, TIMEOUT_MS, TTL_MS, UNDO_RECORDS,
};
use crate::ctxt::Ctxt;
use crate::singleton::{self, Location, Macro};

const SHM_TABLE: Macro = Macro {
    name: "shm_table",
    structure: "table",
    unit: "slot",
    a_unit: "a slot",
    keys: &[
        CAPACITY,
        PATH,
        FILE,
        ROLLBACK,
        TIMEOUT_MS,
        MODE,
        UNDO_RECORDS,
        HASHER,
        ADOPT_CAPACITY,
        TTL_MS,
        MAX_ENTRIES,
        READ_TICK_MS,
    ],
};

/// Parses, checks and expands the attribute.
pub(crate) fn expand(args: TokenStream, item: &syn::DeriveInput) -> syn::Result<TokenStream> {
    let ctxt = Ctxt::new();
    let parsed = attr::parse(&ctxt, SHM_TABLE, args);
    let types = parse_item(&ctxt, item);
    if let Some((key, value)) = types {
        singleton::check_stored(&ctxt, key, Stored::Key, "key");
        singleton::check_stored(&ctxt, value, Stored::Value, "value");
    }
    let location = singleton::location(&ctxt, SHM_TABLE, &parsed);
    singleton::require_capacity(&ctxt, SHM_TABLE, &parsed.capacity);
    if let (Some(&max), Some(&capacity), Some(span)) =
        (parsed.max_entries.valid(), parsed.capacity.valid(), parsed.max_entries_span)
    {
        let slots = capacity.next_power_of_two();
        if max > slots {
            ctxt.push(syn::Error::new(
                span,
                format!(
                    "`max_entries` {max} is above the capacity ({slots} slots): a cache holds at \
                     most one entry per slot"
                ),
            ));
        }
    }
    if let Some(span) = parsed.read_tick_ms_span {
        if parsed.ttl_ms.is_absent() && parsed.max_entries.is_absent() {
            ctxt.push(syn::Error::new(
                span,
                "`read_tick_ms` sets how a cache's reads tell the time: give `ttl_ms` or \
                 `max_entries` too, which make the handle a `ShmCache`",
            ));
        }
    }
    ctxt.check()?;
    let (Some((key, value)), Some(location), Some(&capacity)) =
        (types, location, parsed.capacity.valid())
    else {
        unreachable!("every missing part was reported");
    };
    Ok(generate(item, key, value, &location, capacity, &parsed))
}

/// The key and value types of `struct Name(Key, Value);`.
fn parse_item<'a>(
    ctxt: &Ctxt,
    item: &'a syn::DeriveInput,
) -> Option<(&'a syn::Type, &'a syn::Type)> {
    let shape = "`#[shm_table]` expects `struct Name(KeyType, ValueType);`, such as \
                 `pub struct Players(PlayerId, Player);`";
    singleton::tuple_fields::<2>(ctxt, SHM_TABLE, item, shape).map(|[key, value]| (key, value))
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
    let rollback = args.rollback.valid().map(|r| quote!(.rollback(#r)));
    let timeout = args
        .timeout_ms
        .valid()
        .map(|ms| quote!(.timeout(::core::time::Duration::from_millis(#ms))));
    let mode = args.mode.valid().map(|m| quote!(.mode(#m)));
    let undo = args.undo_records.valid().map(|u| quote!(.undo_records(#u)));
    let capacity_call = if args.adopt_capacity.valid() == Some(&true) {
        quote!(.min_capacity(Self::CAPACITY))
    } else {
        quote!(.capacity(Self::CAPACITY))
    };
    let hasher = args.hasher.valid().map_or_else(|| quote!(::shmap::DefaultHasher), |h| quote!(#h));
    let ttl = args
        .ttl_ms
        .valid()
        .map(|ms| quote!(.default_ttl(::core::time::Duration::from_millis(#ms))));
    let max_entries = args.max_entries.valid().map(|n| quote!(.max_entries(#n)));
    let read_clock = args.read_tick_ms.valid().map(|ms| {
        quote!(.read_clock(::shmap::ReadClock::Ticked(::core::time::Duration::from_millis(#ms))))
    });
    let (handle, options_ty, options) = if ttl.is_some() || max_entries.is_some() {
        let cache = quote!(::shmap::ShmCache<#key, #value, #hasher>);
        (
            cache.clone(),
            quote!(::shmap::CacheOptions<#key, #value, #hasher>),
            quote!(<#cache>::options() #capacity_call #rollback #timeout #mode #undo #ttl #max_entries #read_clock),
        )
    } else {
        let table = quote!(::shmap::ShmHashTable<#key, #value, #hasher>);
        (
            table.clone(),
            quote!(::shmap::TableOptions<#key, #value, #hasher>),
            quote!(<#table>::options() #capacity_call #rollback #timeout #mode #undo),
        )
    };
    let accessors =
        singleton::accessors(SHM_TABLE, ident, location, &handle, &options_ty, &options);
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
            /// The layout hash of the key and value types together (the segment header records
            /// each; an opener with other layouts is refused).
            pub const LAYOUT_HASH: u64 = ::shmap::__private::table_layout_hash(
                <#key as ::shmap::ShmLayout>::LAYOUT_HASH,
                <#value as ::shmap::ShmLayout>::LAYOUT_HASH,
            );

            #accessors
        }
    }
}
