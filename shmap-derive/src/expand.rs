//! Code generation for `#[derive(ShmKey)]` and `#[derive(ShmValue)]`.
//!
//! For a struct it emits, inside `const _: () = { … };`:
//! - `unsafe impl ShmLayout`, bounded by `Field: ShmKey` (or `ShmValue`) for every field type,
//!   spanned at the field so a failure points there, and, per field, by
//!   `(): PaddingFree<Self, { start of the next field (or the size) − end of this one }>`,
//!   spanned at the field, so that padding is reported at the field it follows (for generic
//!   types, an assertion in `LAYOUT_HASH`, checked when the type is used);
//! - `LAYOUT_HASH`: the hash of `"struct"`, the field count and, per field, its name, its type's
//!   hash and its offset, then the size and alignment;
//! - `LAYOUT_DESC`: `{name:desc@offset;…}`;
//! - `impl ShmValue` (and `impl ShmKey` for keys).
//!
//! For a fieldless enum (whose variants `check` proved cover every value), the hash covers the
//! representation and each variant's name and discriminant.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::Stored;
use crate::ast::{Container, Data, Field, Variant};
use crate::check;
use crate::ctxt::Ctxt;

/// Parses, checks and expands one derive.
pub(crate) fn derive(input: &syn::DeriveInput, stored: Stored) -> syn::Result<TokenStream> {
    let ctxt = Ctxt::new();
    let cont = Container::from_ast(&ctxt, input);
    check::check(&ctxt, &cont, stored);
    ctxt.check()?;
    let body = match &cont.data {
        Data::Struct(fields) => expand_struct(&cont, fields, stored),
        Data::Enum(variants) => expand_enum(&cont, variants, stored),
        Data::Union(_) => unreachable!("unions are refused by check"),
    };
    Ok(quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, unused_qualifications, clippy::all)]
        const _: () = { #body };
    })
}

/// `impl ShmValue` and, for keys, `impl ShmKey`, with the given generics and predicates.
fn marker_impls(cont: &Container<'_>, predicates: &[TokenStream], stored: Stored) -> TokenStream {
    let ident = cont.ident;
    let (impl_generics, ty_generics, _) = cont.generics.split_for_impl();
    let key = (stored == Stored::Key).then(|| {
        quote! {
            #[automatically_derived]
            impl #impl_generics ::shmap::ShmKey for #ident #ty_generics where #(#predicates,)* {}
        }
    });
    quote! {
        #[automatically_derived]
        impl #impl_generics ::shmap::ShmValue for #ident #ty_generics where #(#predicates,)* {}
        #key
    }
}

fn existing_predicates(cont: &Container<'_>) -> Vec<TokenStream> {
    cont.generics
        .where_clause
        .iter()
        .flat_map(|w| w.predicates.iter())
        .map(|p| quote!(#p))
        .collect()
}

fn expand_struct(cont: &Container<'_>, fields: &[Field<'_>], stored: Stored) -> TokenStream {
    let ident = cont.ident;
    let (impl_generics, ty_generics, _) = cont.generics.split_for_impl();
    let mut predicates = existing_predicates(cont);
    for field in fields {
        // The bound's path is written here, not interpolated, so that it too carries the field's
        // span: rustc reports an unsatisfied bound at the trait path.
        let ty = field.ty;
        predicates.push(match stored {
            Stored::Key => quote_spanned!(ty.span()=> #ty: ::shmap::ShmKey),
            Stored::Value => quote_spanned!(ty.span()=> #ty: ::shmap::ShmValue),
        });
    }

    let tys: Vec<_> = fields.iter().map(|f| f.ty).collect();
    let members: Vec<_> = fields.iter().map(|f| &f.member).collect();
    let names: Vec<_> = fields.iter().map(|f| f.name.as_str()).collect();
    let prefixes: Vec<String> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| format!("{}{}:", if i == 0 { "" } else { ";" }, f.name))
        .collect();
    let field_count = fields.len() as u64;
    let field_sizes = quote!(0usize #(+ ::core::mem::size_of::<#tys>())*);

    let generic = cont.generics.type_params().next().is_some()
        || cont.generics.const_params().next().is_some();
    let padding_assert = if generic {
        // Needs the concrete types: checked when `LAYOUT_HASH` is evaluated (when a table or an
        // enclosing type uses this instantiation).
        quote! {
            assert!(
                ::core::mem::size_of::<Self>() == #field_sizes,
                "a type derived `ShmKey` or `ShmValue` has padding bytes, which cannot live in \
                 shared memory: make the padding an explicit field",
            );
        }
    } else {
        // One bound per field, on the bytes between its end and the next field's start (or the
        // end of the struct), spanned at the field: rustc then points at the field that padding
        // follows, and says how many bytes.
        for (i, field) in fields.iter().enumerate() {
            let (ty, member) = (field.ty, &field.member);
            let next = match fields.get(i + 1) {
                Some(next) => {
                    let next = &next.member;
                    quote!(::core::mem::offset_of!(Self, #next))
                }
                None => quote!(::core::mem::size_of::<Self>()),
            };
            predicates.push(quote_spanned! {field.span=>
                (): ::shmap::__private::PaddingFree<
                    Self,
                    { #next - ::core::mem::offset_of!(Self, #member) - ::core::mem::size_of::<#ty>() },
                >
            });
        }
        quote!()
    };

    let markers = marker_impls(cont, &predicates, stored);
    // SAFETY (of the generated impl): `check` has required `#[repr(C)]`/`transparent` and no
    // field type that is a pointer, a heap owner, `bool`, `char` or interior-mutable; every
    // field is bounded by `ShmKey`/`ShmValue` (so is itself valid for any bytes, padding-free
    // and immutable); and the struct has no padding, by the `PaddingFree` bound or, for a
    // generic struct, by the assertion in `LAYOUT_HASH`, which every structure evaluates when
    // it is opened over the type (before any value is copied).
    quote! {
        #[automatically_derived]
        unsafe impl #impl_generics ::shmap::ShmLayout for #ident #ty_generics
        where
            #(#predicates,)*
        {
            const LAYOUT_HASH: u64 = {
                #padding_assert
                ::shmap::LayoutHasher::new()
                    .write_str("struct")
                    .write_u64(#field_count)
                    #(
                        .write_str(#names)
                        .write_u64(<#tys as ::shmap::ShmLayout>::LAYOUT_HASH)
                        .write_u64(::core::mem::offset_of!(Self, #members) as u64)
                    )*
                    .write_u64(::core::mem::size_of::<Self>() as u64)
                    .write_u64(::core::mem::align_of::<Self>() as u64)
                    .finish()
            };
            const LAYOUT_DESC: ::shmap::LayoutDesc = ::shmap::LayoutDesc::new()
                .push_str("{")
                #(
                    .push_str(#prefixes)
                    .push_desc(&<#tys as ::shmap::ShmLayout>::LAYOUT_DESC)
                    .push_str("@")
                    .push_u64(::core::mem::offset_of!(Self, #members) as u64)
                )*
                .push_str("}");
        }
        #markers
    }
}

fn expand_enum(cont: &Container<'_>, variants: &[Variant<'_>], stored: Stored) -> TokenStream {
    let ident = cont.ident;
    let (int, _) = cont.repr.int.expect("check requires an integer repr");
    let int_ty = syn::Ident::new(int.name, proc_macro2::Span::call_site());
    let int_name = int.name;
    let names: Vec<String> = variants.iter().map(|v| v.ident.to_string()).collect();
    let variant_idents: Vec<_> = variants.iter().map(|v| v.ident).collect();
    let desc = format!("enum {int_name}{{{}}}", names.join(";"));
    let count = variants.len() as u64;
    let predicates = existing_predicates(cont);
    let markers = marker_impls(cont, &predicates, stored);
    // SAFETY (of the generated impl): `check` has required an integer `#[repr]` and variants
    // that cover every value of it, so any bytes are a valid `Self`; a fieldless enum has no
    // padding (asserted: its size is the integer's) and no interior mutability.
    quote! {
        #[automatically_derived]
        unsafe impl ::shmap::ShmLayout for #ident {
            const LAYOUT_HASH: u64 = {
                assert!(::core::mem::size_of::<Self>() == ::core::mem::size_of::<#int_ty>());
                ::shmap::LayoutHasher::new()
                    .write_str("enum")
                    .write_str(#int_name)
                    .write_u64(#count)
                    #( .write_str(#names).write_u64(#ident::#variant_idents as #int_ty as u64) )*
                    .finish()
            };
            const LAYOUT_DESC: ::shmap::LayoutDesc = ::shmap::LayoutDesc::new().push_str(#desc);
        }
        #markers
    }
}
