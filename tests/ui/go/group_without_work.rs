use go_context::{go, Context, Group};

fn main() {
    let group: Group = Group::new(&Context::background());
    go!(group =>);
}
