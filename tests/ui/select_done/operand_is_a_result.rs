use go_context::select_done;

fn parse(s: &str) -> Result<u32, std::num::ParseIntError> {
    s.parse()
}

async fn pick() -> u32 {
    select_done! {
        done => 0,
        r = parse("7") => r.unwrap_or(0),
        default => 1,
    }
}

fn main() {
    let _ = pick();
}
