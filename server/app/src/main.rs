//! The `gatehouse` binary.

/// mimalloc instead of the system allocator: a request allocates and frees many small
/// buffers across worker threads, where glibc's arenas spent a tenth of the server's
/// CPU per refresh (ADR 20).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    gatehouse_server::cli::main()
}
