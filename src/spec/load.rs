//! Reading the command line's input files: a YAML file as JSON, and the
//! function input from an `Input` document or from the Composition step that
//! calls this function. `bootstrap` and `mirror` both read their files here;
//! errors name the file.

use std::path::Path;

use serde_json::Value as Json;

use crate::error::{Error, Result};
use crate::sdk::request::decode;
use crate::spec::Input;

/// The function's own name: a Composition step calling it carries the input.
const FUNCTION_NAME: &str = "function-ecr-packages";

/// The function input in the YAML file at `path`.
pub fn input_file(path: &Path) -> Result<Input> {
    input(&yaml(path)?, path)
}

/// The function input: an Input document as is, or the input of the
/// Composition step that calls this function.
pub fn input(document: &Json, path: &Path) -> Result<Input> {
    let input = if document.get("kind").and_then(Json::as_str) == Some("Composition") {
        document
            .pointer("/spec/pipeline")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .find(|step| {
                step.pointer("/functionRef/name").and_then(Json::as_str) == Some(FUNCTION_NAME)
            })
            .and_then(|step| step.get("input"))
            .cloned()
            .ok_or_else(|| Error::InvalidInput {
                field: path.display().to_string(),
                message: format!(
                    "the Composition has no pipeline step calling {FUNCTION_NAME} with an input"
                ),
            })?
    } else {
        document.clone()
    };
    decode(input).map_err(|e| Error::InvalidInput {
        field: format!("{}: {}", path.display(), e.path),
        message: e.message,
    })
}

/// A YAML file, as JSON; errors name the path.
pub fn yaml(path: &Path) -> Result<Json> {
    serde_norway::from_str(&text(path)?).map_err(|e| Error::InvalidInput {
        field: path.display().to_string(),
        message: format!("not YAML: {e}"),
    })
}

/// A text file; errors name the path.
pub fn text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn input_comes_from_the_composition_step() {
        let composition = json!({"kind": "Composition", "spec": {"pipeline": [
            {"step": "other", "functionRef": {"name": "function-patch-and-transform"}, "input": {"kind": "Resources"}},
            {"step": "ecr", "functionRef": {"name": "function-ecr-packages"}, "input": {"apiVersion": "ecr.fn.crossplane.io/v1beta1", "kind": "Input", "pinDigests": true}}
        ]}});
        let found = input(&composition, Path::new("c.yaml")).expect("input");
        assert!(found.pin_digests);
        let err = input(
            &json!({"kind": "Composition", "spec": {"pipeline": []}}),
            Path::new("c.yaml"),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("no pipeline step calling function-ecr-packages"),
            "{err}"
        );
        let err = input(
            &json!({"kind": "Input", "strategy": 1}),
            Path::new("i.yaml"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("i.yaml: strategy"), "{err}");
    }
}
