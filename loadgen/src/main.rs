fn main() {
    eprintln!("corecache-loadgen: not built yet (see issue 5)");
    std::process::exit(1);
}
