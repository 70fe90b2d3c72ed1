//! From a `ValidationResponse` to the `AdmissionResponse` policy-server answers.
//!
//! Mirrors policy-evaluator's `AdmissionResponse::from_policy_validation_response`
//! (`admission_response.rs`): the patch is `json_patch::diff(request.object, mutated_object)`
//! (json-patch 4, the crate and major version policy-server uses; arrays are compared by
//! index), serialised and base64-encoded (standard alphabet); an empty diff is no patch. Not
//! modelled: the uid, and the post-processing of monitor mode and `allowedToMutate: false`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

/// Message policy-evaluator rejects with when a policy mutates a DELETE (null object).
pub const MUTATION_ON_DELETE: &str = "Incoming object is null, which happens only with DELETE operations, but the policy is attempting a mutation. This is not allowed";

/// Why a patch cannot be decoded or applied.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// `patch` is not standard base64.
    #[error("patch is not base64")]
    Base64(#[source] base64::DecodeError),
    /// The decoded patch is not an RFC 6902 JSON Patch.
    #[error("patch is not a JSON Patch")]
    Json(#[source] serde_json::Error),
    /// An operation does not apply to the object.
    #[error("patch does not apply")]
    Apply(#[source] json_patch::PatchError),
}

/// The `AdmissionResponse` (camelCase, without `uid`) policy-server would answer for
/// `validation_response` on a request whose `object` is `request_object` (`null` on DELETE).
///
/// Keys: `allowed`; `patchType: "JSONPatch"` and `patch` (base64) only when the diff is not
/// empty; `status: {message, code}` only when either is set; `auditAnnotations` and
/// `warnings` copied through (`null` when absent).
pub fn admission_response(request_object: &Value, validation_response: &Value) -> Value {
    let field = |key: &str| validation_response.get(key).cloned().unwrap_or(Value::Null);
    let mutated_object = field("mutated_object");
    let mut response = Map::new();

    if !mutated_object.is_null() && request_object.is_null() {
        response.insert("allowed".into(), json!(false));
        response.insert("status".into(), json!({"message": MUTATION_ON_DELETE}));
        response.insert("auditAnnotations".into(), Value::Null);
        response.insert("warnings".into(), Value::Null);
        return Value::Object(response);
    }

    response.insert(
        "allowed".into(),
        json!(field("accepted").as_bool().unwrap_or(false)),
    );
    if !mutated_object.is_null() {
        let diff = json_patch::diff(request_object, &mutated_object);
        if !diff.0.is_empty() {
            response.insert("patchType".into(), json!("JSONPatch"));
            response.insert(
                "patch".into(),
                json!(STANDARD.encode(json!(diff).to_string())),
            );
        }
    }
    let (message, code) = (field("message"), field("code"));
    if !message.is_null() || !code.is_null() {
        let mut status = Map::new();
        if !message.is_null() {
            status.insert("message".into(), message);
        }
        if !code.is_null() {
            status.insert("code".into(), code);
        }
        response.insert("status".into(), Value::Object(status));
    }
    response.insert("auditAnnotations".into(), field("audit_annotations"));
    response.insert("warnings".into(), field("warnings"));
    Value::Object(response)
}

/// Decodes an `AdmissionResponse.patch` (base64 JSON Patch) into its operations.
pub fn decode_patch(patch: &str) -> Result<Value, PatchError> {
    let bytes = STANDARD.decode(patch).map_err(PatchError::Base64)?;
    serde_json::from_slice(&bytes).map_err(PatchError::Json)
}

/// Applies a JSON Patch (the decoded operations, as [`decode_patch`] returns them) to
/// `object`, as the API server does with the admission response.
pub fn apply_patch(object: &Value, patch: &Value) -> Result<Value, PatchError> {
    let patch: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(PatchError::Json)?;
    let mut patched = object.clone();
    json_patch::patch(&mut patched, &patch).map_err(PatchError::Apply)?;
    Ok(patched)
}

/// `object` after the admission response's patch, or `object` itself when it has none.
pub fn apply_admission_response(
    object: &Value,
    admission_response: &Value,
) -> Result<Value, PatchError> {
    match admission_response.get("patch").and_then(Value::as_str) {
        Some(patch) => apply_patch(object, &decode_patch(patch)?),
        None => Ok(object.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app"}]}})
    }

    #[test]
    fn appended_sidecar_is_one_add_and_round_trips() {
        let mut mutated = pod();
        mutated["spec"]["containers"] = json!([{"name": "app"}, {"name": "proxy"}]);
        let validation = json!({"accepted": true, "message": null, "code": null, "mutated_object": mutated, "audit_annotations": null, "warnings": null});
        let response = admission_response(&pod(), &validation);
        assert_eq!(response["allowed"], json!(true));
        assert_eq!(response["patchType"], json!("JSONPatch"));
        let patch = decode_patch(response["patch"].as_str().unwrap_or_default()).unwrap();
        assert_eq!(
            patch,
            json!([{"op": "add", "path": "/spec/containers/1", "value": {"name": "proxy"}}])
        );
        assert_eq!(
            apply_admission_response(&pod(), &response).unwrap(),
            mutated
        );
    }

    #[test]
    fn unchanged_mutated_object_is_no_patch() {
        let validation = json!({"accepted": true, "mutated_object": pod()});
        let response = admission_response(&pod(), &validation);
        assert_eq!(
            response,
            json!({"allowed": true, "auditAnnotations": null, "warnings": null})
        );
    }

    #[test]
    fn rejection_carries_status_and_warnings() {
        let validation =
            json!({"accepted": false, "message": "no", "code": 400, "warnings": ["w"]});
        let response = admission_response(&pod(), &validation);
        assert_eq!(response["status"], json!({"message": "no", "code": 400}));
        assert_eq!(response["warnings"], json!(["w"]));
        assert!(response.get("patch").is_none());
    }

    #[test]
    fn mutating_a_delete_is_rejected() {
        let validation = json!({"accepted": true, "mutated_object": pod()});
        let response = admission_response(&Value::Null, &validation);
        assert_eq!(response["allowed"], json!(false));
        assert_eq!(response["status"]["message"], json!(MUTATION_ON_DELETE));
    }
}
