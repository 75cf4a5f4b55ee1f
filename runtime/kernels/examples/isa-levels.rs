//! Prints the instruction-set levels this CPU runs, lowest first (for `.ci/isa-levels`).

fn main() {
    use rawnr_kernels::Isa;
    let top = Isa::detected();
    let levels: Vec<&str> = Isa::levels()
        .iter()
        .take_while(|&&l| {
            Isa::levels().iter().position(|&x| x == l)
                <= Isa::levels().iter().position(|&x| x == top)
        })
        .map(|l| l.name())
        .collect();
    println!("{}", levels.join(" "));
}
