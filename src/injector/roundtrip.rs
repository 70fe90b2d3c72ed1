//! The round trip every injection behaviour's property test asserts, in one place: injecting an
//! injected pod changes nothing, and uninjecting it gives the pod back.

use proptest::prelude::*;
use serde_json::Value;

use super::{Injector, Outcome};
use crate::surgery::uninject;

/// Injects `pod`, then checks inject∘inject = inject (reported unchanged, equal) and
/// uninject∘inject = identity; returns the injected pod.
pub fn check(injector: &Injector, pod: &Value) -> Result<Value, TestCaseError> {
    let mut once = pod.clone();
    injector
        .inject(&mut once, Some("default"))
        .map_err(|e| TestCaseError::fail(format!("first injection failed: {e}")))?;
    let mut twice = once.clone();
    let outcome = injector
        .inject(&mut twice, Some("default"))
        .map_err(|e| TestCaseError::fail(format!("re-injection failed: {e}")))?;
    prop_assert!(
        matches!(outcome, Outcome::Injected { changed: false, .. }),
        "{:?}",
        outcome
    );
    prop_assert_eq!(&twice, &once);
    let mut back = once.clone();
    uninject(&mut back).map_err(|e| TestCaseError::fail(format!("uninject failed: {e}")))?;
    prop_assert_eq!(&back, pod);
    Ok(once)
}
