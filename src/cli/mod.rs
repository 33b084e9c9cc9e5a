//! Subcommand implementations of the `advseg` binary.

/// `println!` that returns the write error instead of panicking: `advseg sweep --list | head`
/// closes the pipe early, and the command should end quietly (main checks `is_broken_pipe`).
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($t)*).map_err(anyhow::Error::from)
    }};
}

/// `print!` counterpart of `outln!`.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($t)*).map_err(anyhow::Error::from)
    }};
}

/// Whether an error is stdout's reader having gone away (EPIPE), which a CLI treats as "the
/// reader has seen enough", not as a failure.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(feature = "app")]
pub mod app;
pub mod bench;
pub mod bench_step;
pub mod compare;
mod console;
pub mod data;
pub mod info;
pub mod model;
pub mod predict;
pub mod sweep;
pub mod train;
