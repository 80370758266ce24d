fn main() {
    eprintln!("corecache: the server is not wired yet (see issue 4)");
    std::process::exit(1);
}
