//! The `#[repr(...)]` of a type, parsed into what shmap needs to know (zerocopy-derive's
//! `repr.rs`, reduced to the legal cases for stored types).

use proc_macro2::Span;

use crate::ctxt::Ctxt;

/// An integer representation of a fieldless enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IntRepr {
    pub(crate) name: &'static str,
    pub(crate) bits: u32,
    pub(crate) signed: bool,
}

const INT_REPRS: [IntRepr; 12] = [
    IntRepr { name: "u8", bits: 8, signed: false },
    IntRepr { name: "i8", bits: 8, signed: true },
    IntRepr { name: "u16", bits: 16, signed: false },
    IntRepr { name: "i16", bits: 16, signed: true },
    IntRepr { name: "u32", bits: 32, signed: false },
    IntRepr { name: "i32", bits: 32, signed: true },
    IntRepr { name: "u64", bits: 64, signed: false },
    IntRepr { name: "i64", bits: 64, signed: true },
    IntRepr { name: "u128", bits: 128, signed: false },
    IntRepr { name: "i128", bits: 128, signed: true },
    IntRepr { name: "usize", bits: usize::BITS, signed: false },
    IntRepr { name: "isize", bits: usize::BITS, signed: true },
];

/// The representation hints of a type, each with the span of its hint.
#[derive(Default)]
pub(crate) struct Repr {
    pub(crate) c: Option<Span>,
    pub(crate) transparent: Option<Span>,
    pub(crate) packed: Option<Span>,
    pub(crate) align: Option<Span>,
    pub(crate) int: Option<(IntRepr, Span)>,
}

impl Repr {
    /// Parses every `#[repr(...)]` attribute in `attrs`.
    pub(crate) fn from_attrs(ctxt: &Ctxt, attrs: &[syn::Attribute]) -> Repr {
        let mut repr = Repr::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("repr")) {
            let parsed = attr.parse_nested_meta(|meta| {
                let span = meta.path.get_ident().map_or_else(Span::call_site, syn::Ident::span);
                let name = meta.path.get_ident().map(ToString::to_string).unwrap_or_default();
                match name.as_str() {
                    "C" => repr.c = Some(span),
                    "transparent" => repr.transparent = Some(span),
                    "packed" | "align" => {
                        if meta.input.peek(syn::token::Paren) {
                            let content;
                            syn::parenthesized!(content in meta.input);
                            content.parse::<syn::LitInt>()?;
                        }
                        if name == "packed" {
                            repr.packed = Some(span)
                        } else {
                            repr.align = Some(span)
                        }
                    }
                    other => match INT_REPRS.iter().find(|r| r.name == other) {
                        Some(int) => repr.int = Some((*int, span)),
                        None => return Err(meta.error(format!("unknown representation `{other}`"))),
                    },
                }
                Ok(())
            });
            if let Err(e) = parsed {
                ctxt.push(e);
            }
        }
        repr
    }
}
