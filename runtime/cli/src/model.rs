//! Model selection: a file given with `--model` (memory-mapped), else the built-in PMRID.

use std::path::Path;

use rawnr_core::format::Model;
use rawnr_engine::file::ModelFile;

use crate::CliError;

/// 64-byte aligned storage for the built-in model, so it is parsed in place.
#[repr(C, align(64))]
struct Aligned<T: ?Sized>(T);

static BUILTIN: &Aligned<[u8]> = &Aligned(*include_bytes!("../../../models/pmrid.rnm"));

/// A loaded model: mapped from a file or built in.
pub enum ModelStore {
    /// Memory-mapped file.
    File(ModelFile),
    /// The built-in PMRID model.
    Builtin,
}

impl ModelStore {
    /// The validated model.
    pub fn model(&self) -> Model<'_> {
        match self {
            ModelStore::File(f) => f.model(),
            ModelStore::Builtin => match Model::parse(&BUILTIN.0) {
                Ok(m) => m,
                Err(e) => unreachable!("the built-in model is validated by the tests: {e}"),
            },
        }
    }
}

/// Loads `path`, or the built-in model when `None`.
pub fn load(path: Option<&Path>) -> Result<ModelStore, CliError> {
    match path {
        None => Ok(ModelStore::Builtin),
        Some(p) => ModelFile::open(p)
            .map(ModelStore::File)
            .map_err(|e| CliError::Model {
                path: p.display().to_string(),
                reason: e.to_string(),
            }),
    }
}
