//! Reading the expectation tags out of an object's `.BTF`.
//!
//! `__success` and friends are `btf_decl_tag` attributes on the program's
//! function, so clang emits one BTF_KIND_DECL_TAG per tag, with
//! `component_idx == -1` (the tag is on the function itself, not on an
//! argument) and `type` pointing at the BTF_KIND_FUNC.

use std::collections::BTreeMap;
use std::ffi::CStr;

use crate::libbpf::Object;

/// `btf_kind()` and `btf_decl_tag()` are static inline in libbpf's btf.h, so
/// libbpf-sys has no binding for them; these mirror them.
fn kind(t: &libbpf_sys::btf_type) -> u32 {
    (t.info >> 24) & 0x1f
}

fn name(btf: *const libbpf_sys::btf, off: u32) -> Option<String> {
    // SAFETY: btf is valid; libbpf bounds-checks the offset and may return NULL.
    let p = unsafe { libbpf_sys::btf__name_by_offset(btf, off) };
    // SAFETY: non-NULL results point into the BTF string section.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// The `comment:` decl tags of every function of `obj`, keyed by function
/// name, each list in BTF order. Functions without such tags are absent.
pub fn function_comment_tags(obj: &Object) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Some(btf) = obj.btf() else {
        return out;
    };
    // SAFETY: btf belongs to the live object.
    let count = unsafe { libbpf_sys::btf__type_cnt(btf) };
    for id in 1..count {
        // SAFETY: 0 < id < type count.
        let t = unsafe { libbpf_sys::btf__type_by_id(btf, id) };
        // SAFETY: libbpf returns NULL or a pointer into the BTF data.
        let Some(t) = (unsafe { t.as_ref() }) else {
            continue;
        };
        if kind(t) != libbpf_sys::BTF_KIND_DECL_TAG {
            continue;
        }
        // SAFETY: a DECL_TAG type is followed by its struct btf_decl_tag.
        let component_idx = unsafe {
            (*(t as *const libbpf_sys::btf_type)
                .add(1)
                .cast::<libbpf_sys::btf_decl_tag>())
            .component_idx
        };
        if component_idx != -1 {
            continue;
        }
        // SAFETY: for DECL_TAG the union holds the target type id.
        let target_id = unsafe { t.__bindgen_anon_1.type_ };
        // SAFETY: libbpf bounds-checks the id and returns NULL when invalid.
        let Some(target) = (unsafe { libbpf_sys::btf__type_by_id(btf, target_id).as_ref() }) else {
            continue;
        };
        if kind(target) != libbpf_sys::BTF_KIND_FUNC {
            continue;
        }
        let (Some(func), Some(tag)) = (name(btf, target.name_off), name(btf, t.name_off)) else {
            continue;
        };
        if tag.starts_with("comment:") {
            out.entry(func).or_default().push(tag);
        }
    }
    out
}
