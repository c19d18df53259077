//! Prints `www/js/task-rows.js`, the page's table of catalogue tasks, from the registry:
//!
//! cargo run --release --example task_rows > www/js/task-rows.js
fn main() {
    print!("{}", toyformer::tasks::page_rows_js());
}
