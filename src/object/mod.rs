//! Removing keys from JSON objects without disturbing the order of the others.
//!
//! With the `preserve_order` feature (kube-inject turns it on to rewrite manifests in their own
//! key order) a `serde_json::Map` is an `IndexMap`, whose plain `remove` moves the last key into
//! the hole. Without it (the policy module) a map is a `BTreeMap`, which has no order to keep.

use serde_json::{Map, Value};

/// Removes `key`, keeping the other keys in their order.
pub(crate) fn remove_key(map: &mut Map<String, Value>, key: &str) -> Option<Value> {
    #[cfg(feature = "preserve_order")]
    {
        map.shift_remove(key)
    }
    #[cfg(not(feature = "preserve_order"))]
    {
        map.remove(key)
    }
}
