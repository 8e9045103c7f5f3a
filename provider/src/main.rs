use clap::Parser;

fn main() {
    let _args = provider::args::Args::parse();
}
