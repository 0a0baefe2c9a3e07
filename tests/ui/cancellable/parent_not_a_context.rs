use go_context::cancellable;

struct Job {
    id: u32,
}

impl Job {
    #[cancellable(parent = self.id)]
    fn run(&self) -> Option<u32> {
        Some(self.id)
    }
}

fn main() {
    let _ = Job { id: 1 }.run();
}
