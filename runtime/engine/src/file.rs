//! Loading models from files (std): memory-mapped, so the weights are used in place.

use std::fs::File;
use std::path::Path;

use rawnr_core::format::Model;

/// Errors of opening a model file.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be opened or mapped.
    Io(std::io::Error),
    /// The file is not a valid model.
    Model(rawnr_core::Error),
}

impl core::fmt::Display for LoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LoadError::Io(e) => write!(f, "{e}"),
            LoadError::Model(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LoadError {}

/// A model file mapped into memory (page-aligned, so weights are used zero-copy).
pub struct ModelFile {
    map: memmap2::Mmap,
}

impl ModelFile {
    /// Maps and validates the model at `path`.
    pub fn open(path: &Path) -> Result<Self, LoadError> {
        let file = File::open(path).map_err(LoadError::Io)?;
        let len = file.metadata().map_err(LoadError::Io)?.len();
        if len == 0 {
            return Err(LoadError::Model(rawnr_core::Error::Truncated {
                needed: 64,
                got: 0,
            }));
        }
        // SAFETY: the mapping is read-only and private to this process; a concurrent writer
        // truncating the file could fault, which is the documented risk of mmap-based loading.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(LoadError::Io)?;
        Model::parse(&map).map_err(LoadError::Model)?;
        Ok(ModelFile { map })
    }

    /// The validated model, borrowing the mapping.
    pub fn model(&self) -> Model<'_> {
        // Validated in `open`, and the bytes cannot change.
        match Model::parse(&self.map) {
            Ok(m) => m,
            Err(_) => unreachable!("validated at open"),
        }
    }
}
