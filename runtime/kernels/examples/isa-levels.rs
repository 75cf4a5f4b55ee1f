//! Prints the instruction-set levels this CPU runs, lowest first (for `.ci/isa-levels`).

fn main() {
    let levels: Vec<&str> = rawnr_kernels::Isa::available()
        .iter()
        .map(|l| l.name())
        .collect();
    println!("{}", levels.join(" "));
}
