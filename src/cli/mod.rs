//! Subcommand implementations of the `advseg` binary.

/// `println!` that returns the write error instead of panicking: `advseg sweep --list | head`
/// closes the pipe early, and the command should end quietly (main checks `is_broken_pipe`).
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($t)*).map_err($crate::cli::stdout_error)
    }};
}

/// `print!` counterpart of `outln!`.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($t)*).map_err($crate::cli::stdout_error)
    }};
}

/// Marks a write to stdout that failed because its reader went away. Only this marker, and not
/// any EPIPE in an error chain, ends the process quietly: a broken pipe to a child process or a
/// socket is a real failure and must still be reported.
#[derive(Debug, thiserror::Error)]
#[error("stdout was closed by its reader")]
pub struct StdoutClosed(#[source] std::io::Error);

/// Wraps a stdout write error: EPIPE becomes `StdoutClosed`, anything else stays as it is.
pub fn stdout_error(e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        StdoutClosed(e).into()
    } else {
        e.into()
    }
}

/// Whether an error is stdout's reader having gone away, which a CLI treats as "the reader has
/// seen enough", not as a failure.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<StdoutClosed>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stdout_epipe_counts_as_a_closed_reader() {
        let pipe = || std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(is_broken_pipe(&stdout_error(pipe())));
        assert!(is_broken_pipe(
            &stdout_error(pipe()).context("listing the sweep")
        ));
        // EPIPE from somewhere else (a child's stdin, a socket) is a failure to report.
        assert!(!is_broken_pipe(&anyhow::Error::from(pipe())));
        assert!(!is_broken_pipe(
            &anyhow::Error::from(pipe()).context("writing to the child")
        ));
        // Other stdout errors are failures too.
        let full = std::io::Error::other("disk full");
        assert!(!is_broken_pipe(&stdout_error(full)));
    }
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
