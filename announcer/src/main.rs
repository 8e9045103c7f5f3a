use clap::Parser;

fn main() {
    let _args = announcer::args::Args::parse();
}
