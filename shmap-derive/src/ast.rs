//! The derive input as a typed model: what kind of type, its representation, and its fields or
//! variants, each keeping a reference to its tokens for error spans (serde_derive's
//! `internals/ast.rs`).

use crate::ctxt::Ctxt;
use crate::repr::Repr;

/// The type a derive is applied to.
pub(crate) struct Container<'a> {
    pub(crate) ident: &'a syn::Ident,
    pub(crate) generics: &'a syn::Generics,
    pub(crate) repr: Repr,
    pub(crate) data: Data<'a>,
}

/// What the type is made of.
pub(crate) enum Data<'a> {
    Struct(Vec<Field<'a>>),
    Enum(Vec<Variant<'a>>),
    Union(&'a syn::token::Union),
}

/// One field of a struct.
pub(crate) struct Field<'a> {
    /// `name` or `0` (for `offset_of!` and the layout description).
    pub(crate) member: syn::Member,
    /// The member as text.
    pub(crate) name: String,
    pub(crate) ty: &'a syn::Type,
    /// The whole field, for errors that concern it (such as padding after it).
    pub(crate) span: proc_macro2::Span,
}

/// One variant of an enum.
pub(crate) struct Variant<'a> {
    pub(crate) ident: &'a syn::Ident,
    pub(crate) fields: &'a syn::Fields,
    pub(crate) discriminant: Option<&'a syn::Expr>,
}

impl<'a> Container<'a> {
    pub(crate) fn from_ast(ctxt: &Ctxt, input: &'a syn::DeriveInput) -> Container<'a> {
        let data = match &input.data {
            syn::Data::Struct(s) => Data::Struct(fields(&s.fields)),
            syn::Data::Enum(e) => Data::Enum(
                e.variants
                    .iter()
                    .map(|v| Variant {
                        ident: &v.ident,
                        fields: &v.fields,
                        discriminant: v.discriminant.as_ref().map(|(_, expr)| expr),
                    })
                    .collect(),
            ),
            syn::Data::Union(u) => Data::Union(&u.union_token),
        };
        Container {
            ident: &input.ident,
            generics: &input.generics,
            repr: Repr::from_attrs(ctxt, &input.attrs),
            data,
        }
    }
}

fn fields(fields: &syn::Fields) -> Vec<Field<'_>> {
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let member = match &f.ident {
                Some(ident) => syn::Member::Named(ident.clone()),
                None => syn::Member::Unnamed(syn::Index::from(i)),
            };
            let name = match &f.ident {
                Some(ident) => ident.to_string(),
                None => i.to_string(),
            };
            Field { member, name, ty: &f.ty, span: syn::spanned::Spanned::span(f) }
        })
        .collect()
}
