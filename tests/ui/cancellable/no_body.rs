use go_context::{cancellable, Error};

trait Job {
    #[cancellable]
    fn run(&self) -> Result<(), Error>;
}

fn main() {}
