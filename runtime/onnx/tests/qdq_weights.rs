//! The two QDQ weight storages of an int8 model (`QdqWeights`) hold the same dequantized
//! weights: uint8 `q + 128` with zero points 128, int8 `q` with zero points 0, same scales; the
//! rest of the graph is identical, and the storage is named in the metadata. (Which integer
//! kernels ONNX Runtime then runs, and why uint8 is the CPU EP's default, is in the crate docs;
//! `runtime/cli/tests/ort.rs` and `.ci/isa-levels` check the outputs.)

use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::{Message, ModelProto};
use rawnr_core::format::Model;
use rawnr_onnx::{export, export_with, Precision, QdqWeights};

fn load(path: &str) -> Vec<u32> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    let bytes = std::fs::read(&p).unwrap();
    let mut words = vec![0u32; bytes.len().div_ceil(4) + 1];
    bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(&bytes);
    words[bytes.len().div_ceil(4)] = bytes.len() as u32;
    words
}

fn model(words: &[u32]) -> Model<'_> {
    let len = *words.last().unwrap() as usize;
    Model::parse(&bytemuck::cast_slice::<u32, u8>(words)[..len]).unwrap()
}

fn meta<'a>(m: &'a ModelProto, key: &str) -> Option<&'a str> {
    m.metadata_props
        .iter()
        .find(|e| e.key == key)
        .map(|e| e.value.as_str())
}

#[test]
fn uint8_and_int8_weights_dequantize_alike() {
    let words = load("models/pmrid-int8.rnm");
    let m = model(&words);
    let parse =
        |w| ModelProto::parse_from_bytes(&export_with(&m, Precision::F32, w).unwrap()).unwrap();
    let (u, s) = (parse(QdqWeights::U8Offset), parse(QdqWeights::S8));
    assert_eq!(
        export(&m, Precision::F32).unwrap(),
        export_with(&m, Precision::F32, QdqWeights::U8Offset).unwrap(),
        "the default storage is uint8"
    );
    assert_eq!(meta(&u, "rawnr.qdq_weights"), Some("u8-offset128"));
    assert_eq!(meta(&s, "rawnr.qdq_weights"), Some("s8"));
    let (gu, gs) = (u.graph.as_ref().unwrap(), s.graph.as_ref().unwrap());
    assert_eq!(
        gu.node, gs.node,
        "same graph but for the weight initializers"
    );
    assert_eq!(gu.initializer.len(), gs.initializer.len());
    let mut weights = 0;
    for (a, b) in gu.initializer.iter().zip(&gs.initializer) {
        assert_eq!(a.name, b.name);
        assert_eq!(a.dims, b.dims);
        let is_weight = a.name.starts_with('w') && a.name.ends_with("_q");
        let is_weight_zp = a.name.starts_with('w') && a.name.ends_with("_zp");
        if is_weight || is_weight_zp {
            assert_eq!(a.data_type, DataType::UINT8 as i32, "{}", a.name);
            assert_eq!(b.data_type, DataType::INT8 as i32, "{}", b.name);
            for (&x, &y) in a.raw_data.iter().zip(&b.raw_data) {
                // (x - 128) with zero point 128 equals y (as i8) with zero point 0.
                let (xu, yi) = (x as i32, y as i8 as i32);
                if is_weight {
                    assert_eq!(xu - 128, yi, "{}", a.name);
                } else {
                    assert_eq!((xu, yi), (128, 0), "{}", a.name);
                }
            }
            weights += usize::from(is_weight);
        } else {
            assert_eq!(a, b, "{} differs", a.name);
        }
    }
    // PMRID-int8's int8 convolutions (all but grouped transposes with mixed scales).
    assert!(weights >= 80, "{weights} int8 weight initializers");
}

#[test]
fn float_models_do_not_depend_on_the_storage() {
    let words = load("models/pmrid.rnm");
    let m = model(&words);
    assert_eq!(
        export_with(&m, Precision::F32, QdqWeights::S8).unwrap(),
        export_with(&m, Precision::F32, QdqWeights::U8Offset).unwrap()
    );
}
