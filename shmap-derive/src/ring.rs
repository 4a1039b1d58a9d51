//! `#[shm_ring(capacity = 4096, path = "/jobs", kind = "spmc")]` on `pub struct Jobs(Job);`
//! becomes a typed singleton: `Jobs::get()` returns a `&'static shmap::ring::SpmcRing<Job>`,
//! opened (or created) once per process. Roles stay handles claimed from it
//! (`Jobs::get().producer()`), so the singleton never hides who produces. The arguments are
//! checked by `singleton`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::Stored;
use crate::ctxt::Ctxt;
use crate::singleton::{self, Location, Macro};

const SHM_RING: Macro = Macro {
    name: "shm_ring",
    structure: "ring",
    unit: "element",
    a_unit: "an element",
    keys: &["capacity", "path", "file", "kind", "timeout_ms", "mode"],
};

/// The `kind` values and the ring type each names.
const KINDS: [(&str, &str); 4] = [
    ("spsc", "SpscRing"),
    ("spmc", "SpmcRing"),
    ("mpmc", "MpmcRing"),
    ("broadcast", "BroadcastRing"),
];

/// The parsed arguments (see `table::Args` for the `Option<Option<_>>`).
#[derive(Default)]
struct Args {
    capacity: Option<u64>,
    path: Option<Option<String>>,
    file: Option<Option<String>>,
    kind: Option<Option<&'static str>>,
    timeout_ms: Option<u64>,
    mode: Option<u32>,
}

/// Parses, checks and expands the attribute.
pub(crate) fn expand(args: TokenStream, item: &syn::DeriveInput) -> syn::Result<TokenStream> {
    let ctxt = Ctxt::new();
    let parsed = parse_args(&ctxt, args);
    let element = parse_item(&ctxt, item);
    if let Some(element) = element {
        singleton::check_stored(&ctxt, element, Stored::Value, "element");
    }
    let location = singleton::location(&ctxt, SHM_RING, &parsed.path, &parsed.file);
    if parsed.kind.is_none() && !ctxt.has_errors() {
        ctxt.error_at(
            proc_macro2::Span::call_site(),
            "`#[shm_ring]` needs `kind = \"...\"`, one of: spsc, spmc, mpmc, broadcast",
        );
    }
    singleton::require_capacity(&ctxt, SHM_RING, parsed.capacity);
    ctxt.check()?;
    let (Some(element), Some(location), Some(capacity), Some(Some(kind))) =
        (element, location, parsed.capacity, parsed.kind)
    else {
        unreachable!("every missing part was reported");
    };
    Ok(generate(item, element, &location, capacity, kind, &parsed))
}

fn parse_args(ctxt: &Ctxt, args: TokenStream) -> Args {
    let mut out = Args::default();
    singleton::parse_keys(ctxt, SHM_RING, args, |key, value| match key {
        "capacity" => out.capacity = singleton::capacity(ctxt, SHM_RING, value),
        "path" => out.path = singleton::path(ctxt, value),
        "file" => out.file = singleton::file(ctxt, value),
        "kind" => out.kind = Some(kind(ctxt, value)),
        "timeout_ms" => out.timeout_ms = singleton::timeout_ms(ctxt, value),
        "mode" => out.mode = singleton::mode(ctxt, value),
        _ => unreachable!("checked against the keys"),
    });
    out
}

/// The ring type that `kind = "..."` names.
fn kind(ctxt: &Ctxt, value: &syn::Expr) -> Option<&'static str> {
    let given = singleton::string(ctxt, value, "kind")?;
    let found = KINDS.iter().find(|(name, _)| *name == given).map(|(_, ty)| *ty);
    if found.is_none() {
        ctxt.error_spanned_by(
            value,
            format!(
                "unknown ring kind {given:?}; expected one of: spsc (one producer, one \
                 consumer), spmc, mpmc, broadcast (every subscriber sees every element)"
            ),
        );
    }
    found
}

/// The element type of `struct Name(Element);`.
fn parse_item<'a>(ctxt: &Ctxt, item: &'a syn::DeriveInput) -> Option<&'a syn::Type> {
    let shape_error = |tokens: &dyn quote::ToTokens| {
        ctxt.error_spanned_by(
            tokens.to_token_stream(),
            "`#[shm_ring]` expects `struct Name(ElementType);`, such as `pub struct Jobs(Job);`",
        );
    };
    if !singleton::not_generic(ctxt, SHM_RING, item) {
        return None;
    }
    match &item.data {
        syn::Data::Struct(syn::DataStruct { fields: syn::Fields::Unnamed(f), .. })
            if f.unnamed.len() == 1 =>
        {
            Some(&f.unnamed[0].ty)
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
    element: &syn::Type,
    location: &Location,
    capacity: u64,
    kind: &str,
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
    let timeout =
        args.timeout_ms.map(|ms| quote!(.timeout(::core::time::Duration::from_millis(#ms))));
    let mode = args.mode.map(|m| quote!(.mode(#m)));
    let ring_ident = format_ident!("{}", kind);
    let ring = quote!(::shmap::ring::#ring_ident<#element>);
    let path_doc = format!("The ring's {where_doc}: `{path}`.");
    let kind_doc = format!("The ring's kind: [`shmap::ring::{kind}`].");
    let kind_name = KINDS.iter().find(|(_, ty)| *ty == kind).map_or("", |(name, _)| *name);
    // Written here rather than interpolated, so an unsatisfied bound is reported at the type.
    let element_bound = quote_spanned!(element.span()=> #element: ::shmap::ShmValue);
    quote! {
        #(#attrs)*
        #vis struct #ident {
            _private: (),
        }

        #[automatically_derived]
        impl #ident where #element_bound {
            /// The number of elements requested (rounded up to a power of two at creation).
            pub const CAPACITY: usize = #capacity;
            #[doc = #path_doc]
            pub const PATH: &'static str = #path;
            #[doc = #kind_doc]
            pub const KIND: &'static str = #kind_name;
            /// The layout hash of the element type (the segment header records it; an opener
            /// with another layout is refused).
            pub const LAYOUT_HASH: u64 = <#element as ::shmap::ShmLayout>::LAYOUT_HASH;

            /// Where the ring lives.
            pub fn backing() -> ::shmap::Backing {
                #backing
            }

            /// The options `get` opens the ring with.
            pub fn options() -> ::shmap::ring::RingOptions<#ring> {
                <#ring>::options().capacity(Self::CAPACITY) #timeout #mode
            }

            /// The ring, opened or created on the first successful call in this process; an
            /// error is returned (and the next call tries again) if it cannot be opened.
            pub fn try_get() -> ::core::result::Result<&'static #ring, ::shmap::OpenError> {
                static RING: ::shmap::__private::Singleton<#ring> = ::shmap::__private::Singleton::new();
                RING.get_or_try_init(|| Self::options().open(&Self::backing()))
            }

            /// The ring, opened or created on first use in this process.
            ///
            /// # Panics
            /// If it cannot be opened (the message names the path and the error); use
            /// `try_get` to handle that.
            #[track_caller]
            pub fn get() -> &'static #ring {
                match Self::try_get() {
                    ::core::result::Result::Ok(ring) => ring,
                    ::core::result::Result::Err(e) => ::core::panic!(
                        "{}::get(): {} (path {})", ::core::stringify!(#ident), e, Self::PATH
                    ),
                }
            }

            /// Removes the ring's name; processes that have it open keep using it.
            pub fn destroy() -> ::core::result::Result<(), ::shmap::OpenError> {
                ::shmap::Segment::unlink(&Self::backing())
            }
        }
    }
}
