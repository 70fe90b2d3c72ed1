//! Remembered entries as a recipe: the parts of a rendering that never change, and where each
//! pod's values go.
//!
//! A rendering seen before has been read as a SidecarInjectionSpec once, with placeholders
//! where the pod's values go. The recipe keeps that result with every placeholder already
//! found, so injecting a pod builds its entries in one pass: fixed parts are cloned whole and
//! only the texts that hold placeholders are joined with the pod's values. Nothing is searched
//! for placeholders per admission.

use serde_json::{Map, Value};

use crate::object::PodLists;
use crate::template::placeholder::{Piece, has_token, join_pieces, split_placeholders};
use crate::template::{InjectionEntries, TemplateError};

/// How to build the entries of one rendering for a pod's values.
#[derive(Debug, Clone)]
pub(in crate::template) struct EntriesRecipe {
    /// The recipe of each pod list's entries.
    lists: PodLists<Vec<Recipe>>,
}

/// How to build one JSON value.
#[derive(Debug, Clone)]
enum Recipe {
    /// A value without placeholders, cloned as it is.
    Fixed(Value),
    /// Text with placeholders.
    Text(Vec<Part>),
    /// A list some of whose items hold placeholders.
    List(Vec<Recipe>),
    /// A map some of whose values hold placeholders (keys never do: see [`EntriesRecipe::new`]).
    Map(Vec<(String, Recipe)>),
}

/// An owned [`Piece`].
#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Placeholder { index: usize, raw: String },
}

impl EntriesRecipe {
    /// The recipe for `entries` (placeholders still in), or `None` when a map key holds a
    /// placeholder: a key's value can change what the spec reads, so it must be read again.
    pub(in crate::template) fn new(entries: &InjectionEntries) -> Option<Self> {
        let mut lists = PodLists::default();
        for (list, items) in entries.iter() {
            *lists.get_mut(list) = items.iter().map(Recipe::new).collect::<Option<Vec<_>>>()?;
        }
        Some(Self { lists })
    }

    /// The entries for the pod whose values are `captured`, or `None` when one of them is not
    /// text (a list, a map) where the rendering put it: then the spec must be read around it.
    pub(in crate::template) fn fill(
        &self,
        captured: &[upon::Value],
    ) -> Result<Option<InjectionEntries>, TemplateError> {
        // Every list is filled, even after one that cannot be: an error in any list is reported.
        let mut entries = InjectionEntries::default();
        let mut complete = true;
        for (list, items) in self.lists.iter() {
            let filled: Option<Vec<Value>> = items
                .iter()
                .map(|item| item.fill(captured))
                .collect::<Result<_, _>>()?;
            match filled {
                Some(filled) => *entries.get_mut(list) = filled,
                None => complete = false,
            }
        }
        Ok(complete.then_some(entries))
    }
}

impl Recipe {
    /// Built bottom-up: a list or map whose parts are all fixed is fixed as a whole.
    fn new(value: &Value) -> Option<Self> {
        let recipe = match value {
            Value::String(text) if has_token(text) => Recipe::Text(
                split_placeholders(text)
                    .into_iter()
                    .map(|piece| match piece {
                        Piece::Text(t) => Part::Text(t.to_string()),
                        Piece::Placeholder { index, raw } => Part::Placeholder {
                            index,
                            raw: raw.to_string(),
                        },
                    })
                    .collect(),
            ),
            Value::Array(items) => {
                let items: Vec<Recipe> = items.iter().map(Recipe::new).collect::<Option<_>>()?;
                if items.iter().all(Recipe::is_fixed) {
                    Recipe::Fixed(value.clone())
                } else {
                    Recipe::List(items)
                }
            }
            Value::Object(map) => {
                let mut entries = Vec::with_capacity(map.len());
                for (key, item) in map {
                    if has_token(key) {
                        return None;
                    }
                    entries.push((key.clone(), Recipe::new(item)?));
                }
                if entries.iter().all(|(_, recipe)| recipe.is_fixed()) {
                    Recipe::Fixed(value.clone())
                } else {
                    Recipe::Map(entries)
                }
            }
            other => Recipe::Fixed(other.clone()),
        };
        Some(recipe)
    }

    fn is_fixed(&self) -> bool {
        matches!(self, Recipe::Fixed(_))
    }

    /// The value for `captured`; `None` when a text would become a value of another kind.
    fn fill(&self, captured: &[upon::Value]) -> Result<Option<Value>, TemplateError> {
        Ok(Some(match self {
            Recipe::Fixed(value) => value.clone(),
            Recipe::Text(parts) => {
                let pieces = parts.iter().map(|part| match part {
                    Part::Text(t) => Piece::Text(t),
                    Part::Placeholder { index, raw } => Piece::Placeholder { index: *index, raw },
                });
                match join_pieces(pieces, captured)? {
                    text @ Value::String(_) => text,
                    _ => return Ok(None),
                }
            }
            Recipe::List(items) => {
                let mut filled = Vec::with_capacity(items.len());
                for item in items {
                    let Some(value) = item.fill(captured)? else {
                        return Ok(None);
                    };
                    filled.push(value);
                }
                Value::Array(filled)
            }
            Recipe::Map(entries) => {
                let mut filled = Map::new();
                for (key, item) in entries {
                    let Some(value) = item.fill(captured)? else {
                        return Ok(None);
                    };
                    filled.insert(key.clone(), value);
                }
                Value::Object(filled)
            }
        }))
    }
}
