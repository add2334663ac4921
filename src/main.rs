fn main() {
    std::process::exit(gonogo::cli::main());
}
