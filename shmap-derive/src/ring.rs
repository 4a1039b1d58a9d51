//! `#[shm_ring(capacity = 4096, path = "/jobs", kind = "spmc")]` on `pub struct Jobs(Job);`
//! becomes a typed singleton: `Jobs::get()` returns a `&'static shmap::ring::SpmcRing<Job>`,
//! opened (or created) once per process. Roles stay handles claimed from it
//! (`Jobs::get().producer()`), so the singleton never hides who produces. The arguments are
//! checked by `singleton`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::Stored;
use crate::attr::{self, Args, CAPACITY, FILE, KIND, MODE, PATH, TIMEOUT_MS};
use crate::ctxt::Ctxt;
use crate::singleton::{self, Location, Macro};

const SHM_RING: Macro = Macro {
    name: "shm_ring",
    structure: "ring",
    unit: "element",
    a_unit: "an element",
    keys: &[CAPACITY, PATH, FILE, KIND, TIMEOUT_MS, MODE],
};

/// The `kind` values and the ring type each names.
const KINDS: [(&str, &str); 4] = [
    ("spsc", "SpscRing"),
    ("spmc", "SpmcRing"),
    ("mpmc", "MpmcRing"),
    ("broadcast", "BroadcastRing"),
];

/// Parses, checks and expands the attribute.
pub(crate) fn expand(args: TokenStream, item: &syn::DeriveInput) -> syn::Result<TokenStream> {
    let ctxt = Ctxt::new();
    let parsed = attr::parse(&ctxt, SHM_RING, args);
    let element = parse_item(&ctxt, item);
    if let Some(element) = element {
        singleton::check_stored(&ctxt, element, Stored::Value, "element");
    }
    let location = singleton::location(&ctxt, SHM_RING, &parsed);
    if parsed.kind.is_absent() && !ctxt.has_errors() {
        ctxt.error_at(
            proc_macro2::Span::call_site(),
            "`#[shm_ring]` needs `kind = \"...\"`, one of: spsc, spmc, mpmc, broadcast",
        );
    }
    singleton::require_capacity(&ctxt, SHM_RING, &parsed.capacity);
    ctxt.check()?;
    let (Some(element), Some(location), Some(&capacity), Some(&ring_type)) =
        (element, location, parsed.capacity.valid(), parsed.kind.valid())
    else {
        unreachable!("every missing part was reported");
    };
    Ok(generate(item, element, &location, capacity, ring_type, &parsed))
}

/// The ring type that `kind = "..."` names.
pub(crate) fn ring_type(ctxt: &Ctxt, value: &syn::Expr) -> Option<&'static str> {
    let given = singleton::string(ctxt, value, KIND)?;
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
    let shape =
        "`#[shm_ring]` expects `struct Name(ElementType);`, such as `pub struct Jobs(Job);`";
    singleton::tuple_fields::<1>(ctxt, SHM_RING, item, shape).map(|[element]| element)
}

fn generate(
    item: &syn::DeriveInput,
    element: &syn::Type,
    location: &Location,
    capacity: u64,
    ring_type: &str,
    args: &Args,
) -> TokenStream {
    let attrs = &item.attrs;
    let vis = &item.vis;
    let ident = &item.ident;
    let capacity = capacity as usize;
    let timeout = args
        .timeout_ms
        .valid()
        .map(|ms| quote!(.timeout(::core::time::Duration::from_millis(#ms))));
    let mode = args.mode.valid().map(|m| quote!(.mode(#m)));
    let ring_ident = format_ident!("{}", ring_type);
    let ring = quote!(::shmap::ring::#ring_ident<#element>);
    let accessors = singleton::accessors(
        SHM_RING,
        ident,
        location,
        &ring,
        &quote!(::shmap::ring::RingOptions<#ring>),
        &quote!(<#ring>::options().capacity(Self::CAPACITY) #timeout #mode),
    );
    let kind_doc = format!("The ring's kind: [`shmap::ring::{ring_type}`].");
    let kind = KINDS.iter().find(|(_, ty)| *ty == ring_type).map_or("", |(name, _)| *name);
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
            #[doc = #kind_doc]
            pub const KIND: &'static str = #kind;
            /// The layout hash of the element type (the segment header records it; an opener
            /// with another layout is refused).
            pub const LAYOUT_HASH: u64 = <#element as ::shmap::ShmLayout>::LAYOUT_HASH;

            #accessors
        }
    }
}
