#!/usr/bin/env bash
# Miri on the core's own tests that reach its `unsafe` code (the intrusive waiter list in
# context-core/src/tree/waiter_list.rs, the unowned child links of tree/children.rs (`tree::`
# includes tree::cancel::tests, a parent's cancellation racing the drops of its children on
# two threads, and tree::lock::tests, the lock in a node's state word with parked waiters),
# the tree operations that use them, the inline waiter entries of `Done` and
# `wait()` in context-core/src/waiters.rs, and the tagged cause word of
# context-core/src/error.rs): undefined behaviour, use after free, double free and leaks are
# errors. A bounded subset; the timer's tests run apart (below: its background thread outlives
# the tests). The tests themselves take 13 s; the rest is the one-off Miri sysroot and the
# build of the dev-dependencies for Miri (a few minutes on an idle 2-core machine; 22 minutes
# were measured with seven other builds running).
set -euo pipefail
cd "$(dirname "$0")/../.."

toolchain=nightly-2026-05-20
rustup toolchain install "$toolchain" --profile minimal --component miri,rust-src
cargo +"$toolchain" miri setup

# Own target dir: the Miri build must not invalidate the main one.
CARGO_TARGET_DIR=target/miri cargo +"$toolchain" miri test -p go-context --lib -- \
  tree:: \
  error:: \
  tests::a_cancelled_child_leaves_its_parent_list_with_its_last_handle \
  tests::a_parent_cancelled_over_cancelled_children_passes_them_by \
  tests::dropping_the_last_handle_unlinks_without_cancel \
  tests::a_child_of_a_value_links_to_the_nearest_cancel_ancestor \
  tests::children_lists_give_memory_back_as_they_shrink \
  tests::waiter_lists_free_each_entry_as_it_leaves \
  tests::cancel_reports_whether_it_made_the_transition \
  tests::waiters_of_many_nodes_wake_across_a_subtree \
  waiters::tests::inline_entries_are_freed_by_their_owners_in_any_order \
  waiters::tests::stack_entries_leave_the_list_with_their_frame \
  waiters::tests::owners_on_other_threads_free_their_entries_while_the_cancel_walks \
  waiters::tests::re_polls_with_the_stored_waker_store_nothing_and_the_last_waker_is_woken \
  waiters::tests::a_finished_run_leaves_no_waiter_registered \
  --skip tree::deadline

# The timer entries that hold only their node's address (context-core/src/tree/deadline.rs):
# firings racing the drops of last handles, a takeover putting entries back. These start the
# timer's thread, which outlives the tests, so Miri's leak check is off here (the tests assert
# that every node is freed themselves). About 4 s of tests.
CARGO_TARGET_DIR=target/miri MIRIFLAGS="${MIRIFLAGS:-} -Zmiri-ignore-leaks" \
  cargo +"$toolchain" miri test -p go-context --lib -- tree::deadline
