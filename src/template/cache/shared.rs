//! [`Shared`]: a handle to a value many users share, which is only ever read when it was made
//! for the built-in defaults.
//!
//! In a pre-initialised policy module every admission's instance starts from a snapshot, and
//! the host copies a snapshot page the first time an admission writes to it. Taking an `Arc`
//! writes its count, so sharing the built-in template and mesh data through `Arc`s cost a page
//! copy each per admission. Those two live in statics instead and are handed out by reference;
//! anything built from other settings is still counted and freed when its last user goes.

use std::ops::Deref;
use std::sync::Arc;

/// A shared value: a static one, or a counted one.
#[derive(Debug)]
pub enum Shared<T: 'static> {
    /// Made once for the process and never freed (the built-in defaults).
    Static(&'static T),
    /// Made for some settings; freed with its last handle.
    Counted(Arc<T>),
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        match self {
            Shared::Static(value) => Shared::Static(value),
            Shared::Counted(value) => Shared::Counted(Arc::clone(value)),
        }
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        match self {
            Shared::Static(value) => value,
            Shared::Counted(value) => value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_kinds_read_the_same_and_clones_share() {
        static FIVE: u32 = 5;
        let counted = Shared::Counted(Arc::new(5u32));
        let again = counted.clone();
        assert_eq!(*Shared::Static(&FIVE), *again);
        match (&counted, &again) {
            (Shared::Counted(a), Shared::Counted(b)) => assert!(Arc::ptr_eq(a, b)),
            _ => panic!("a counted handle cloned into a static one"),
        }
        assert!(
            matches!(Shared::Static(&FIVE).clone(), Shared::Static(v) if std::ptr::eq(v, &FIVE))
        );
    }
}
