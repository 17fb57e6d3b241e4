//! How each style waits for I/O and who moves the CPU from one connection
//! to the next: the two axes the classic texts sort concurrency models by.
//! Reports print it beside the measurements (the trade-off table) and the
//! claims they test ("blocking I/O parks the thread", "an event loop's
//! handler must return quickly") pick their styles by it. One exhaustive
//! match per axis, so a new style does not compile until it says.

use super::Style;

/// How a style learns that a connection can make progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waits {
    /// A thread or process per connection sleeps in read(2) until data
    /// comes: the kernel parks it.
    BlocksInRead,
    /// Asks every non-blocking socket in turn whether it is ready, without
    /// a readiness API.
    AsksEverySocket,
    /// Is told which sockets are ready (poll, epoll) and then reads and
    /// writes each itself: synchronous I/O, multiplexed.
    ToldWhichAreReady,
    /// Submits reads and writes and is told which completed, the data
    /// already copied (io_uring): asynchronous I/O.
    ToldWhatCompleted,
}

/// Who switches between connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Switches {
    /// The kernel's scheduler, preemptively, between threads or processes.
    KernelPreemptively,
    /// A user-space runtime, cooperatively: at each await or yield.
    RuntimeCooperatively,
    /// One loop calls each connection's handler in turn: a handler that
    /// does not return holds every other connection on that loop.
    LoopInTurn,
}

impl Waits {
    /// A few words for a table cell.
    pub fn words(self) -> &'static str {
        match self {
            Waits::BlocksInRead => "blocks in read",
            Waits::AsksEverySocket => "asks every socket",
            Waits::ToldWhichAreReady => "told which are ready",
            Waits::ToldWhatCompleted => "told what completed",
        }
    }
}

impl Switches {
    /// A few words for a table cell.
    pub fn words(self) -> &'static str {
        match self {
            Switches::KernelPreemptively => "kernel, preemptive",
            Switches::RuntimeCooperatively => "runtime, cooperative",
            Switches::LoopInTurn => "one loop, in turn",
        }
    }
}

impl Style {
    /// How the style waits for I/O.
    pub fn waits(self) -> Waits {
        match self {
            Style::Threads | Style::Process | Style::Pool => Waits::BlocksInRead,
            Style::Polling => Waits::AsksEverySocket,
            Style::Poll | Style::Reactor | Style::Epoll | Style::Prefork => {
                Waits::ToldWhichAreReady
            }
            // tokio and may park their workers in epoll: the task or
            // coroutine looks blocked, the runtime is told which are ready.
            Style::Tasks | Style::Coroutines => Waits::ToldWhichAreReady,
            Style::Uring => Waits::ToldWhatCompleted,
        }
    }

    /// Who switches between its connections.
    pub fn switches(self) -> Switches {
        match self {
            Style::Threads | Style::Process | Style::Pool => Switches::KernelPreemptively,
            Style::Tasks | Style::Coroutines => Switches::RuntimeCooperatively,
            // prefork: one loop per worker process, the kernel between them.
            Style::Polling
            | Style::Poll
            | Style::Reactor
            | Style::Epoll
            | Style::Uring
            | Style::Prefork => Switches::LoopInTurn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_styles_the_claims_pick_sit_where_the_texts_put_them() {
        assert_eq!(Style::Uring.waits(), Waits::ToldWhatCompleted);
        assert_eq!(Style::Threads.switches(), Switches::KernelPreemptively);
        assert_eq!(Style::Epoll.switches(), Switches::LoopInTurn);
        assert_eq!(Style::Tasks.switches(), Switches::RuntimeCooperatively);
    }
}
