use context_core::{cancellable, Error};

trait Job {
    #[cancellable]
    fn run(&self) -> Result<(), Error>;
}

fn main() {}
