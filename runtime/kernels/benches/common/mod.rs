//! What the kernel benches share: PMRID's layer list for a tile.

#![allow(dead_code)]

/// One layer of PMRID (see `trainer/import/src/pmrid.rs`).
#[derive(Clone, Copy)]
pub enum Layer {
    /// Dense k x k "same" convolution, stride 1: in, out, size, k.
    Dense(usize, usize, usize, usize),
    /// Depthwise k x k "same": channels, input size, k, stride.
    Dw(usize, usize, usize, usize),
    /// Pointwise: in, out, size.
    Pw(usize, usize, usize),
    /// 2x2 stride-2 transposed convolution: in, out, input size.
    ConvT(usize, usize, usize),
    /// Element-wise add: channels, size.
    Add(usize, usize),
}

/// PMRID's layers in execution order for an `h` x `h` packed tile.
pub fn pmrid_layers(h: usize) -> Vec<Layer> {
    use Layer::*;
    let mut l = vec![Dense(4, 16, h, 3)];
    let sep = |l: &mut Vec<Layer>, ci: usize, co: usize, h: usize, k: usize, s: usize| {
        l.push(Dw(ci, h, k, s));
        l.push(Pw(ci, co, h / s));
    };
    let mut h = h;
    for (cin, cout, blocks) in [(16, 64, 2), (64, 128, 2), (128, 256, 4), (256, 512, 4)] {
        for i in 0..blocks {
            let (ci, s) = if i == 0 { (cin, 2) } else { (cout, 1) };
            if i == 0 {
                sep(&mut l, ci, cout, h, 3, 2);
            }
            sep(&mut l, ci, cout / 4, h, 5, s);
            h /= s;
            sep(&mut l, cout / 4, cout, h, 5, 1);
            l.push(Add(cout, h));
        }
    }
    sep(&mut l, 512, 64, h, 3, 1);
    for (cin, skip_c, cout) in [(64, 256, 64), (64, 128, 32), (32, 64, 32), (32, 16, 16)] {
        sep(&mut l, cin, cin, h, 3, 1);
        sep(&mut l, cin, cin, h, 3, 1);
        l.push(Add(cin, h));
        l.push(ConvT(cin, cout, h));
        h *= 2;
        sep(&mut l, skip_c, cout, h, 3, 1);
        l.push(Add(cout, h));
    }
    sep(&mut l, 16, 16, h, 3, 1);
    sep(&mut l, 16, 16, h, 3, 1);
    l.push(Add(16, h));
    l.push(Dense(16, 4, h, 3));
    l.push(Add(4, h));
    l
}
