//! Prints the text of `www/js/task-rows.js`, the page's table of catalogue tasks, from the
//! registry (`make wasm` writes that file from the wasm build; this is the native way to see it):
//!
//! cargo run --release --example task_rows
fn main() {
    print!("{}", toyformer::tasks::page_rows_js());
}
