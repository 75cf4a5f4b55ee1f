//! A network's tensors by their path in the module tree (`enc1.0.conv1.depthwise.weight`):
//! what export reads, and what loading published weights writes.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::TensorData;
pub use rawnr_import::npz::Array;

use crate::TrainError;

/// Named f32 tensors (C order).
pub type Tensors = BTreeMap<String, Array>;

struct Collector {
    path: Vec<String>,
    out: Tensors,
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        let shape = t.dims().to_vec();
        let data = t
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("f32 tensor");
        self.out.insert(self.path.join("."), Array { shape, data });
    }
}

/// The tensors of `m` by path.
pub fn collect<M: Module>(m: &M) -> Tensors {
    let mut c = Collector {
        path: Vec::new(),
        out: Tensors::new(),
    };
    m.visit(&mut c);
    c.out
}

struct Loader<'a> {
    path: Vec<String>,
    tensors: &'a Tensors,
    used: usize,
    error: Option<String>,
}

impl ModuleMapper for Loader<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = self.path.join(".");
        let Some(a) = self.tensors.get(&name) else {
            self.error.get_or_insert(format!("missing tensor {name}"));
            return param;
        };
        let want = param.shape().dims::<D>().to_vec();
        if a.shape != want {
            self.error.get_or_insert(format!(
                "tensor {name} has shape {:?}, the model {want:?}",
                a.shape
            ));
            return param;
        }
        self.used += 1;
        let data = TensorData::new(a.data.clone(), a.shape.clone());
        // Loaded as burn loads records: same id, device and autodiff setting.
        let id = param.id;
        let t = Tensor::from_data(data, &param.lazy_device());
        param.transform_for_load(t, id)
    }
}

/// `m` with every tensor replaced by the one of the same path in `tensors`.
pub fn load<M: Module>(m: M, tensors: &Tensors) -> Result<M, TrainError> {
    let mut l = Loader {
        path: Vec::new(),
        tensors,
        used: 0,
        error: None,
    };
    let m = m.map(&mut l);
    if let Some(e) = l.error {
        return Err(TrainError::Input(e));
    }
    if l.used != tensors.len() {
        return Err(TrainError::Input(format!(
            "{} tensors given, the model has {}",
            tensors.len(),
            l.used
        )));
    }
    Ok(m)
}
