use go_context::cancellable;

#[cancellable]
struct Worker {
    rounds: u32,
}

fn main() {
    let _ = Worker { rounds: 1 }.rounds;
}
