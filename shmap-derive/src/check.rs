//! The rules a stored type must follow, one function per rule. Each error says what is
//! required and why, in words, and points at the offending tokens.
//!
//! Some rules are also enforced by trait bounds in the generated code (every field must
//! implement `ShmKey`/`ShmValue`, and there must be no padding); the syntactic checks here come
//! first so that the common mistakes (`String`, `Vec`, `bool`, ...) get a message about the
//! field, with the fix, rather than a trait-bound error.

use quote::ToTokens;

use crate::Stored;
use crate::ast::{Container, Data, Field, Variant};
use crate::ctxt::Ctxt;
use crate::repr::IntRepr;

/// Applies every rule to `cont`.
pub(crate) fn check(ctxt: &Ctxt, cont: &Container<'_>, stored: Stored) {
    check_generics(ctxt, cont);
    match &cont.data {
        Data::Struct(fields) => {
            check_struct_repr(ctxt, cont);
            for field in fields {
                check_field_type(ctxt, field, stored);
            }
        }
        Data::Enum(variants) => check_enum(ctxt, cont, variants),
        Data::Union(token) => ctxt.error_spanned_by(
            token,
            "unions cannot be derived `ShmKey` or `ShmValue`: their bytes do not say which field \
             is live, so another process cannot read them safely; use a struct with a tag field",
        ),
    }
}

/// A stored type cannot borrow: a lifetime would be an address in one process.
fn check_generics(ctxt: &Ctxt, cont: &Container<'_>) {
    for lifetime in cont.generics.lifetimes() {
        ctxt.error_spanned_by(
            lifetime,
            "a type stored in shared memory cannot have lifetime parameters: a borrow is an \
             address in one process's memory",
        );
    }
}

/// A struct's field order and offsets must be the same in every build: `#[repr(C)]` (or
/// `#[repr(transparent)]`) fixes them; Rust's default representation does not.
fn check_struct_repr(ctxt: &Ctxt, cont: &Container<'_>) {
    let repr = &cont.repr;
    if repr.c.is_none() && repr.transparent.is_none() {
        let what = if repr.packed.is_some() {
            "`#[repr(packed)]` alone"
        } else {
            "Rust's default representation"
        };
        ctxt.error_spanned_by(
            cont.ident,
            format!(
                "`{}` needs `#[repr(C)]` (or `#[repr(transparent)]`) to live in shared memory: \
                 with {what}, another build may order and place the fields differently, and \
                 every process must agree on where each field is",
                cont.ident
            ),
        );
    }
    if let Some((int, span)) = repr.int {
        ctxt.error_at(span, format!("`#[repr({})]` applies to enums, not structs", int.name));
    }
}

/// Types that are known not to be storable, recognised by name, with the reason and the fix.
fn check_field_type(ctxt: &Ctxt, field: &Field<'_>, stored: Stored) {
    if let Some(reason) = not_storable(field.ty, stored) {
        ctxt.error_spanned_by(
            field.ty,
            format!(
                "field `{}`: `{}` {}: {reason}",
                field.name,
                type_text(field.ty),
                refusal(&reason)
            ),
        );
    }
}

/// Why a float is refused in a key (and only there: values may hold floats).
const FLOAT_IN_KEY: &str = "keys are compared as bytes, and float equality is not byte \
     equality (-0.0 == 0.0, NaN != NaN); store the bits as an integer, or keep floats in values \
     (`ShmValue`)";

/// What a refused type cannot do, for the message: every refusal but a float in a key is about
/// shared memory itself.
pub(crate) fn refusal(reason: &str) -> &'static str {
    if reason == FLOAT_IN_KEY { "cannot be part of a key" } else { "cannot live in shared memory" }
}

/// Why `ty` cannot be stored, if it is one of the types recognised by name.
pub(crate) fn not_storable(ty: &syn::Type, stored: Stored) -> Option<String> {
    let reason = match ty {
        syn::Type::Reference(_) => {
            "a reference is an address in one process's memory; store the value itself"
        }
        syn::Type::Ptr(_) => {
            "a pointer is an address in one process's memory; store an index or an offset instead"
        }
        syn::Type::BareFn(_) => {
            "a function pointer is an address in one process, and differs between builds"
        }
        syn::Type::TraitObject(_) | syn::Type::ImplTrait(_) => "it has no fixed size or layout",
        syn::Type::Slice(_) => "a slice has no fixed size; use an array `[T; N]`",
        syn::Type::Tuple(t) if !t.elems.is_empty() => {
            "a tuple has no stable layout (Rust may reorder its fields); use a `#[repr(C)]` struct"
        }
        syn::Type::Array(a) => return not_storable(&a.elem, stored),
        syn::Type::Paren(p) => return not_storable(&p.elem, stored),
        syn::Type::Group(g) => return not_storable(&g.elem, stored),
        syn::Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last()?.ident.to_string();
            return by_name(&last, stored).map(str::to_owned);
        }
        _ => return None,
    };
    Some(reason.to_owned())
}

fn by_name(name: &str, stored: Stored) -> Option<&'static str> {
    Some(match name {
        "String" | "str" | "OsString" | "PathBuf" | "CString" => {
            "it points into one process's heap; use `shmap::FixedString<N>`"
        }
        "Vec" | "VecDeque" | "HashMap" | "BTreeMap" | "HashSet" | "BTreeSet" | "BinaryHeap"
        | "LinkedList" => "it owns memory in one process's heap; use a fixed-size array `[T; N]`",
        "Box" | "Rc" | "Arc" | "Cow" | "Weak" | "NonNull" => "it points into one process's heap",
        "bool" => {
            "only 0 and 1 are valid `bool`s, but another process may write any byte there; use `u8`"
        }
        "char" => {
            "not every `u32` is a valid `char` (surrogates, values above 0x10FFFF), and another \
             process may write any; use `u32`"
        }
        "Cell" | "RefCell" | "UnsafeCell" | "OnceCell" | "Mutex" | "RwLock" | "OnceLock" => {
            "interior mutability is not allowed in shared memory: shmap copies values in and out \
             of slots and synchronises that itself"
        }
        n if n.starts_with("Atomic") => {
            "atomics are not allowed in stored values: shmap copies values in and out of slots \
             and synchronises that itself"
        }
        "Option" | "Result" => {
            "its discriminant has invalid bit patterns (and `Option<&T>`, `Option<Box<T>>` hold \
             pointers); use a sentinel value or an explicit flag field"
        }
        n if n.starts_with("NonZero") => {
            "zero is not a valid value of it, but another process may write zero; use the plain integer"
        }
        "Duration" | "Instant" | "SystemTime" => {
            "it has invalid bit patterns (nanoseconds above 999,999,999) or no stable layout; \
             store a `u64` of nanoseconds"
        }
        "f32" | "f64" if stored == Stored::Key => FLOAT_IN_KEY,
        _ => return None,
    })
}

/// An enum can be stored only if every bit pattern of its integer representation is a variant:
/// another process may write any value, and a value that is no variant is undefined behaviour.
fn check_enum(ctxt: &Ctxt, cont: &Container<'_>, variants: &[Variant<'_>]) {
    for v in variants {
        if !v.fields.is_empty() {
            ctxt.error_spanned_by(
                v.fields,
                format!(
                    "variant `{}` has fields: only fieldless enums can be stored, and only when \
                     every value of their integer representation is a variant",
                    v.ident
                ),
            );
        }
    }
    let Some((int, _)) = cont.repr.int else {
        ctxt.error_spanned_by(
            cont.ident,
            format!(
                "enum `{}` needs an integer representation such as `#[repr(u8)]` to have a fixed \
                 size and layout in shared memory",
                cont.ident
            ),
        );
        return;
    };
    if ctxt.has_errors() {
        return;
    }
    let Some(values) = discriminants(ctxt, variants) else { return };
    let count = values.len() as u128;
    let all = if int.bits >= 128 { u128::MAX } else { 1u128 << int.bits };
    let in_range = values.iter().all(|&v| fits(v, int));
    let mut sorted = values.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if count == all && in_range && sorted.len() == values.len() {
        return;
    }
    ctxt.error_spanned_by(
        cont.ident,
        format!(
            "enum `{}` cannot live in shared memory: its {count} variant(s) leave {} of the {} \
             values of a `{}` without a variant, and another process may write any of them; \
             store the `{}` itself (converting with `TryFrom`), or give every value a variant",
            cont.ident,
            all.saturating_sub(sorted.len() as u128),
            if int.bits >= 64 { format!("2^{}", int.bits) } else { all.to_string() },
            int.name,
            int.name,
        ),
    );
}

/// The discriminant of each variant, following Rust's rule (one more than the previous, from 0),
/// if all explicit ones are integer literals.
fn discriminants(ctxt: &Ctxt, variants: &[Variant<'_>]) -> Option<Vec<i128>> {
    let mut next = 0i128;
    let mut values = Vec::with_capacity(variants.len());
    for v in variants {
        let value = match v.discriminant {
            None => next,
            Some(expr) => match literal(expr) {
                Some(value) => value,
                None => {
                    ctxt.error_spanned_by(
                        expr,
                        format!(
                            "variant `{}`: write the discriminant as an integer literal, so that \
                             the derive can check that every value is a variant",
                            v.ident
                        ),
                    );
                    return None;
                }
            },
        };
        values.push(value);
        next = value.wrapping_add(1);
    }
    Some(values)
}

fn literal(expr: &syn::Expr) -> Option<i128> {
    match expr {
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Int(i), .. }) => i.base10_parse().ok(),
        syn::Expr::Unary(syn::ExprUnary { op: syn::UnOp::Neg(_), expr, .. }) => {
            literal(expr).map(|v| -v)
        }
        syn::Expr::Paren(p) => literal(&p.expr),
        syn::Expr::Group(g) => literal(&g.expr),
        _ => None,
    }
}

fn fits(v: i128, int: IntRepr) -> bool {
    if int.bits >= 128 {
        return true;
    }
    if int.signed {
        let half = 1i128 << (int.bits - 1);
        (-half..half).contains(&v)
    } else {
        (0..(1i128 << int.bits)).contains(&v)
    }
}

/// A type as the user would write it (`Vec<u8>`, not `Vec < u8 >`).
pub(crate) fn type_text(ty: &syn::Type) -> String {
    let raw = ty.to_token_stream().to_string();
    let mut out = String::with_capacity(raw.len());
    for (i, c) in raw.char_indices() {
        let prev = raw[..i].chars().next_back();
        let next = raw[i + c.len_utf8()..].chars().next();
        let drop_space = c == ' '
            && (matches!(next, Some('<' | '>' | ',' | ';' | ']' | ')'))
                || matches!(prev, Some('<' | '&' | '[' | '(' | '*')));
        if !drop_space {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_print_as_written() {
        let ty: syn::Type = syn::parse_quote!(Vec<Option<&'static [u8; 4]>>);
        assert_eq!(type_text(&ty), "Vec<Option<&'static [u8; 4]>>");
        let ty: syn::Type = syn::parse_quote!(*const (u8, u16));
        assert_eq!(type_text(&ty), "*const (u8, u16)");
    }

    #[test]
    fn discriminant_ranges() {
        let u8_ = IntRepr { name: "u8", bits: 8, signed: false };
        let i8_ = IntRepr { name: "i8", bits: 8, signed: true };
        assert!(fits(255, u8_) && !fits(256, u8_) && !fits(-1, u8_));
        assert!(fits(-128, i8_) && fits(127, i8_) && !fits(128, i8_));
    }
}
